//! The eligibility rules of DOMAIN.md, as one pure function: for a completion
//! and a registry, either the hours to send or the first reason, in the
//! documented precedence, why nothing is sent. No I/O, so every rule is
//! tested here as a table.

use crate::domain::{AccountKind, CompletionStatus, Hours, Identity, RegistryKind};

/// Why a (completion, registry) pair is not sent. The codes are stable: they
/// are stored, shown to support staff and exported; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    CourseNotCompleted,
    CourseNotCertified,
    SocialLogin,
    MemberAccount,
    CertificateUnbound,
    NotCivilServant,
    PersonnelCategoryNot10,
    NoEnvedAccount,
    ServiceUnitInvalid,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Self::CourseNotCompleted,
        Self::CourseNotCertified,
        Self::SocialLogin,
        Self::MemberAccount,
        Self::CertificateUnbound,
        Self::NotCivilServant,
        Self::PersonnelCategoryNot10,
        Self::NoEnvedAccount,
        Self::ServiceUnitInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CourseNotCompleted => "course_not_completed",
            Self::CourseNotCertified => "course_not_certified",
            Self::SocialLogin => "social_login",
            Self::MemberAccount => "member_account",
            Self::CertificateUnbound => "certificate_unbound",
            Self::NotCivilServant => "not_civil_servant",
            Self::PersonnelCategoryNot10 => "personnel_category_not_10",
            Self::NoEnvedAccount => "no_enved_account",
            Self::ServiceUnitInvalid => "service_unit_invalid",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

// By hand: serde's snake_case would spell `personnel_category_not10`.
impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The decision for one (completion, registry) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Eligible(Hours),
    Ineligible(Reason),
}

/// An account as eligibility sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFacts {
    pub kind: AccountKind,
    pub identity: Option<Identity>,
}

/// Everything the rules look at for one completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub status: CompletionStatus,
    /// Certified hours of the course for the registry being judged.
    pub certified: Option<Hours>,
    /// The account the learning was done under.
    pub account: AccountFacts,
    /// For a certificate: the account it is bound to, if any.
    pub bound: Option<AccountFacts>,
    pub personnel_category: Option<String>,
    pub has_enved_account: bool,
    /// The person's service unit is filled in and in the unit directory.
    pub service_unit_valid: bool,
}

/// Judges one completion for one registry.
pub fn evaluate(f: &Facts, registry: RegistryKind) -> Decision {
    match judge(f, registry) {
        Ok(hours) => Decision::Eligible(hours),
        Err(reason) => Decision::Ineligible(reason),
    }
}

fn judge(f: &Facts, registry: RegistryKind) -> Result<Hours, Reason> {
    if f.status == CompletionStatus::Revoked {
        return Err(Reason::CourseNotCompleted);
    }
    let hours = f
        .certified
        .filter(|h| !h.is_zero())
        .ok_or(Reason::CourseNotCertified)?;
    // A certificate is only a login method: it is judged as the account it is
    // bound to, and never on its own.
    let account = match f.account.kind {
        AccountKind::Certificate => f.bound.ok_or(Reason::CertificateUnbound)?,
        _ => f.account,
    };
    let identity = match account.kind {
        AccountKind::Facebook | AccountKind::Google => return Err(Reason::SocialLogin),
        AccountKind::Member => return Err(Reason::MemberAccount),
        AccountKind::Certificate => return Err(Reason::CertificateUnbound),
        AccountKind::Ecpa | AccountKind::Mygov => account.identity,
    };
    let civil_servant = identity == Some(Identity::CivilServant);
    match registry {
        RegistryKind::Lifelong | RegistryKind::Teacher => {
            if !civil_servant {
                return Err(Reason::NotCivilServant);
            }
            if registry == RegistryKind::Teacher && f.personnel_category.as_deref() != Some("10") {
                return Err(Reason::PersonnelCategoryNot10);
            }
        }
        RegistryKind::Enved => {
            // A civil-servant account, or a general-public My e-Gov account
            // (a pending conversion is still general public).
            let general_public = account.kind == AccountKind::Mygov
                && matches!(
                    identity,
                    Some(Identity::NaturalPerson | Identity::PendingConversion)
                );
            if !civil_servant && !general_public {
                return Err(Reason::NotCivilServant);
            }
            if !f.has_enved_account {
                return Err(Reason::NoEnvedAccount);
            }
            if !f.service_unit_valid {
                return Err(Reason::ServiceUnitInvalid);
            }
        }
    }
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountKind::*;
    use Identity::*;
    use Reason::*;
    use RegistryKind::*;

    fn h(s: &str) -> Hours {
        Hours::parse(s).unwrap()
    }

    /// A fully qualified education-staff learner with an env-ed account.
    fn base(kind: AccountKind, identity: Option<Identity>) -> Facts {
        Facts {
            status: CompletionStatus::Completed,
            certified: Some(h("2.0")),
            account: AccountFacts { kind, identity },
            bound: None,
            personnel_category: Some("10".into()),
            has_enved_account: true,
            service_unit_valid: true,
        }
    }

    fn ok() -> Decision {
        Decision::Eligible(h("2.0"))
    }

    fn no(r: Reason) -> Decision {
        Decision::Ineligible(r)
    }

    #[test]
    fn every_account_kind_and_identity_against_every_registry() {
        // (kind, identity, lifelong, teacher, enved)
        let table = [
            (Ecpa, Some(CivilServant), ok(), ok(), ok()),
            (Mygov, Some(CivilServant), ok(), ok(), ok()),
            (
                Mygov,
                Some(NaturalPerson),
                no(NotCivilServant),
                no(NotCivilServant),
                ok(),
            ),
            (
                Mygov,
                Some(PendingConversion),
                no(NotCivilServant),
                no(NotCivilServant),
                ok(),
            ),
            (
                Facebook,
                None,
                no(SocialLogin),
                no(SocialLogin),
                no(SocialLogin),
            ),
            (
                Google,
                None,
                no(SocialLogin),
                no(SocialLogin),
                no(SocialLogin),
            ),
            (
                Member,
                None,
                no(MemberAccount),
                no(MemberAccount),
                no(MemberAccount),
            ),
            (
                Certificate,
                None,
                no(CertificateUnbound),
                no(CertificateUnbound),
                no(CertificateUnbound),
            ),
        ];
        for (kind, identity, lifelong, teacher, enved) in table {
            let f = base(kind, identity);
            assert_eq!(
                evaluate(&f, Lifelong),
                lifelong,
                "{kind:?} {identity:?} lifelong"
            );
            assert_eq!(
                evaluate(&f, Teacher),
                teacher,
                "{kind:?} {identity:?} teacher"
            );
            assert_eq!(evaluate(&f, Enved), enved, "{kind:?} {identity:?} enved");
        }
    }

    #[test]
    fn a_bound_certificate_is_judged_as_the_account_it_is_bound_to() {
        let bound_to = |kind, identity| Facts {
            bound: Some(AccountFacts { kind, identity }),
            ..base(Certificate, None)
        };
        let cs = bound_to(Ecpa, Some(CivilServant));
        for r in RegistryKind::ALL {
            assert_eq!(evaluate(&cs, r), ok(), "{r}");
        }
        let np = bound_to(Mygov, Some(NaturalPerson));
        assert_eq!(evaluate(&np, Lifelong), no(NotCivilServant));
        assert_eq!(evaluate(&np, Teacher), no(NotCivilServant));
        assert_eq!(evaluate(&np, Enved), ok());
    }

    #[test]
    fn teacher_needs_personnel_category_10() {
        for cat in [None, Some("11".to_string()), Some("01".to_string())] {
            let f = Facts {
                personnel_category: cat.clone(),
                ..base(Ecpa, Some(CivilServant))
            };
            assert_eq!(evaluate(&f, Teacher), no(PersonnelCategoryNot10), "{cat:?}");
            assert_eq!(evaluate(&f, Lifelong), ok());
        }
    }

    #[test]
    fn enved_needs_an_enved_account_then_a_valid_service_unit() {
        let f = Facts {
            has_enved_account: false,
            service_unit_valid: false,
            ..base(Mygov, Some(NaturalPerson))
        };
        assert_eq!(evaluate(&f, Enved), no(NoEnvedAccount));
        let f = Facts {
            has_enved_account: true,
            ..f
        };
        assert_eq!(evaluate(&f, Enved), no(ServiceUnitInvalid));
        assert_eq!(evaluate(&f, Lifelong), no(NotCivilServant));
    }

    #[test]
    fn certified_hours_are_judged_per_registry_and_zero_means_not_certified() {
        for hours in [None, Some(Hours::ZERO)] {
            let f = Facts {
                certified: hours,
                ..base(Ecpa, Some(CivilServant))
            };
            assert_eq!(evaluate(&f, Lifelong), no(CourseNotCertified));
        }
        let f = Facts {
            certified: Some(h("3.5")),
            ..base(Ecpa, Some(CivilServant))
        };
        assert_eq!(evaluate(&f, Lifelong), Decision::Eligible(h("3.5")));
    }

    #[test]
    fn the_first_reason_in_the_documented_order_wins() {
        // Everything wrong at once: revoked beats all.
        let worst = Facts {
            status: CompletionStatus::Revoked,
            certified: None,
            personnel_category: None,
            has_enved_account: false,
            service_unit_valid: false,
            ..base(Facebook, None)
        };
        assert_eq!(evaluate(&worst, Teacher), no(CourseNotCompleted));
        let f = Facts {
            status: CompletionStatus::Completed,
            ..worst.clone()
        };
        assert_eq!(evaluate(&f, Teacher), no(CourseNotCertified));
        let f = Facts {
            certified: Some(h("1.0")),
            ..f
        };
        assert_eq!(evaluate(&f, Teacher), no(SocialLogin));
        let f = Facts {
            account: AccountFacts {
                kind: Mygov,
                identity: Some(PendingConversion),
            },
            ..f
        };
        assert_eq!(evaluate(&f, Teacher), no(NotCivilServant));
        assert_eq!(evaluate(&f, Enved), no(NoEnvedAccount));
        let f = Facts {
            account: AccountFacts {
                kind: Mygov,
                identity: Some(CivilServant),
            },
            ..f
        };
        assert_eq!(evaluate(&f, Teacher), no(PersonnelCategoryNot10));
    }

    #[test]
    fn reason_codes_round_trip_and_match_the_domain_page() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
