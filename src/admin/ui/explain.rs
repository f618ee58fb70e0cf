//! What a record's state means to the learner, and what they must do, in
//! plain words: the rules of DOMAIN.md and the platform's help page
//! (../shared/seeds/), written to the learner ("您"), so support staff can
//! read it and send it as it is. Pure: (registry, state, reason) in, text
//! out; every state and reason the daemon can produce has an entry, which
//! the tests below check.

use super::i18n::Lang;
use crate::domain::RegistryKind;

/// The codes a registry rejects a record with (REGISTRY-API.md).
pub const REGISTRY_CODES: [&str; 7] = [
    "invalid_national_id",
    "unknown_person",
    "unknown_course",
    "invalid_hours",
    "unknown_unit",
    "already_credited",
    "invalid_field",
];

/// One record's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What the state means.
    pub meaning: String,
    /// What the learner must do (often: nothing, wait).
    pub action: String,
}

/// The explanation of a record in `state` (a delivery state or
/// `awaiting_scan`) with `reason`; `None` for a delivered record, which
/// needs none.
pub fn explain(
    lang: Lang,
    registry: RegistryKind,
    state: &str,
    reason: Option<&str>,
) -> Option<Explanation> {
    let reg = lang.registry(registry);
    let zh = lang == Lang::ZhTw;
    let (meaning, action) = match state {
        "delivered" => return None,
        "ineligible" => ineligible(zh, reg, reason),
        "awaiting_scan" => pick(
            zh,
            (
                "系統還沒有檢查這筆完成紀錄，排程檢查後就會決定能否上傳。".into(),
                "不需要做什麼，請稍後再查詢。".into(),
            ),
            (
                "The system has not checked this completion yet; its schedule will decide shortly whether it can be uploaded.".into(),
                "Nothing to do; check again a little later.".into(),
            ),
        ),
        "pending" => pick(
            zh,
            (
                format!("這筆時數符合上傳條件，正在排隊等待上傳到{reg}。"),
                "不需要做什麼。符合條件後約3個工作天內即可在該網站查到（期限見「應上傳期限」）。".into(),
            ),
            (
                format!("These hours qualify and are queued for upload to the {reg}."),
                "Nothing to do. They appear there within about 3 working days of qualifying (see the due time).".into(),
            ),
        ),
        "retrying" => pick(
            zh,
            (
                format!("上傳時{reg}暫時沒有回應或忙碌中，系統會自動再試。"),
                "不需要做什麼，時數會自動補上傳。".into(),
            ),
            (
                format!("The {reg} did not answer or was busy; the system retries by itself."),
                "Nothing to do; the hours will be uploaded automatically.".into(),
            ),
        ),
        "failed" => pick(
            zh,
            (
                format!("多次嘗試上傳到{reg}都沒有成功，系統已停止重試，需要由維運人員處理。"),
                "您不需要做什麼；我們會處理後重新上傳。（客服請轉維運人員，必要時重新同步。）".into(),
            ),
            (
                format!("Repeated uploads to the {reg} failed and the system stopped retrying; ops must look at it."),
                "Nothing to do on your side; we will fix it and upload again. (Support: pass it to ops, or resync.)".into(),
            ),
        ),
        "rejected" => rejected(zh, reg, reason),
        "correcting" => pick(
            zh,
            (
                format!("這筆時數已登錄在{reg}，但課程的認證時數有更正，系統正在把登錄的時數改成正確的數字。"),
                "不需要做什麼，更正會自動完成。".into(),
            ),
            (
                format!("These hours are credited on the {reg}, but the course's certified hours were corrected; the system is updating the credited figure."),
                "Nothing to do; the correction completes by itself.".into(),
            ),
        ),
        "withdrawing" | "withdrawn" => {
            let why = withdrawal_reason(zh, reason);
            let done = state == "withdrawn";
            pick(
                zh,
                (
                    if done {
                        format!("這筆時數已從{reg}撤回：{why}")
                    } else {
                        format!("這筆時數曾登錄在{reg}，現在正在撤回：{why}")
                    },
                    "若您認為課程其實已完成且有認證時數，請與我們聯繫查明。".into(),
                ),
                (
                    if done {
                        format!("These hours were withdrawn from the {reg}: {why}")
                    } else {
                        format!("These hours were credited on the {reg} and are being withdrawn: {why}")
                    },
                    "If you believe the course was completed and is certified, contact us so we can check.".into(),
                ),
            )
        }
        _ => pick(
            zh,
            (
                "這筆紀錄的狀態無法辨識。".into(),
                "請客服將此紀錄轉給維運人員。".into(),
            ),
            (
                "This record's state is not one the console knows.".into(),
                "Support: pass this record to ops.".into(),
            ),
        ),
    };
    Some(Explanation { meaning, action })
}

fn pick(zh: bool, zh_text: (String, String), en_text: (String, String)) -> (String, String) {
    if zh { zh_text } else { en_text }
}

/// The rules of DOMAIN.md, one reason at a time.
fn ineligible(zh: bool, reg: &str, reason: Option<&str>) -> (String, String) {
    match reason {
        Some("course_not_completed") => pick(
            zh,
            (
                "這堂課還沒有完成（或完成紀錄已被取消），只有已完成的課程才能上傳時數。".into(),
                "請到「個人專區 > 學習紀錄」確認並完成這堂課；完成後系統會自動上傳，不需另外申請。".into(),
            ),
            (
                "This course is not completed (or its completion was revoked); only completed courses are uploaded.".into(),
                "Check 個人專區 > 學習紀錄 (My area > Learning record) and complete the course; it is then uploaded automatically.".into(),
            ),
        ),
        Some("course_not_certified") => pick(
            zh,
            (
                format!("這堂課沒有{reg}的認證時數，所以不會上傳到{reg}。"),
                "不需要做什麼；若課程之後補登認證時數，系統會自動上傳。".into(),
            ),
            (
                format!("This course carries no certified hours for the {reg}, so nothing is uploaded there."),
                "Nothing to do; if the course's hours are certified later, they are uploaded automatically.".into(),
            ),
        ),
        Some("social_login") => pick(
            zh,
            (
                "這堂課是用 Facebook 或 Google+ 社群帳號登入時研讀的。社群帳號沒有身分資料，這些時數無法上傳，之後也不能補傳。".into(),
                "請改用公務帳號（人事服務網eCPA 或 我的e政府）登入本平臺，重新研讀這堂課。".into(),
            ),
            (
                "This course was studied while signed in with a Facebook or Google+ social account. Such accounts carry no identity: these hours can never be uploaded.".into(),
                "Sign in with an official account (eCPA or My e-Government) and study the course again.".into(),
            ),
        ),
        Some("member_account") => pick(
            zh,
            (
                "這堂課是用本平臺的一般會員帳號研讀的，會員帳號的時數無法上傳。".into(),
                "請改用公務帳號（人事服務網eCPA 或 我的e政府）登入並重新研讀這堂課。沒有公務帳號者，可先至我的e政府「我的專區 > 申請公務帳號」申請。".into(),
            ),
            (
                "This course was studied under a plain platform member account, whose hours can not be uploaded.".into(),
                "Sign in with an official account (eCPA or My e-Government) and study the course again; without one, apply on My e-Government (我的專區 > 申請公務帳號).".into(),
            ),
        ),
        Some("certificate_unbound") => pick(
            zh,
            (
                "這堂課是用「沒有綁定公務帳號」的自然人憑證登入研讀的。未綁定的憑證會被視為另一個帳號，學習紀錄無法合併，時數無法上傳。".into(),
                "請先用公務帳號（人事服務網eCPA 或 我的e政府）登入，完成「綁定自然人憑證」後再用憑證登入學習；這堂課需要重新研讀。".into(),
            ),
            (
                "This course was studied with a citizen digital certificate (自然人憑證) never bound to an official account. It counts as a separate account whose records can not be merged: the hours can not be uploaded.".into(),
                "Sign in with your official account (eCPA or My e-Government), bind the certificate to it, and study the course again.".into(),
            ),
        ),
        Some("not_civil_servant") => pick(
            zh,
            (
                format!("這堂課是以我的e政府「一般民眾」身分研讀的（或轉為公務人員的申請仍在審核中），{reg}只接受公務人員身分的時數。"),
                "請至【我的e政府】網站「我的專區 > 申請公務帳號」，申請項目選「自然人轉公務員」。轉換完成後，務必再登入本平臺一次，原先研讀的時數會自動上傳，約3個工作天後即可查詢，不需要重新研讀。".into(),
            ),
            (
                format!("This course was studied as a general-public My e-Government account (or its conversion to civil servant is still under review); the {reg} only takes civil servants' hours."),
                "On My e-Government (我的專區 > 申請公務帳號) apply to convert to civil servant (自然人轉公務員). Once converted, sign in to the platform again: the hours already earned are uploaded by themselves within about 3 working days. No need to study again.".into(),
            ),
        ),
        Some("personnel_category_not_10") => pick(
            zh,
            (
                format!("{reg}只接受人員區分為「10 教育人員」的時數，您目前的人員區分不是 10。"),
                "請洽服務機關人事單位確認人員區分；更正為「10 教育人員」後，時數會自動上傳。若帳號身分仍是自然人，請先提出公務申請轉為公務人員之教育人員。".into(),
            ),
            (
                format!("The {reg} only takes hours of personnel category 10 (教育人員, education staff); yours is another category."),
                "Ask your agency's personnel office to check the category; once it is 10, the hours are uploaded by themselves. An account still registered as a natural person must first be converted to civil servant (education staff).".into(),
            ),
        ),
        Some("no_enved_account") => pick(
            zh,
            (
                format!("您在{reg}還沒有個人帳號，時數無處登錄。"),
                format!("請先到{reg}註冊個人帳號；建立後時數會自動上傳，不需重新研讀。"),
            ),
            (
                format!("You have no personal account on the {reg}, so the hours have nowhere to go."),
                format!("Register a personal account on the {reg}; the hours are then uploaded by themselves, no need to study again."),
            ),
        ),
        Some("service_unit_invalid") => pick(
            zh,
            (
                format!("您的服務單位沒有填寫或填寫不正確（不在單位名錄中），{reg}無法登錄。"),
                "請在個人資料中填寫正確的服務單位；更正後時數會自動上傳。".into(),
            ),
            (
                format!("Your service unit (服務單位) is missing or not a known unit, so the {reg} can not credit the hours."),
                "Fill in the correct service unit in your profile; the hours are then uploaded by themselves.".into(),
            ),
        ),
        _ => pick(
            zh,
            (
                "這筆時數目前不符合上傳條件。".into(),
                "請客服依原因代碼查閱文件，或轉給維運人員。".into(),
            ),
            (
                "These hours do not qualify for upload at the moment.".into(),
                "Support: look the reason code up in the docs, or pass it to ops.".into(),
            ),
        ),
    }
}

/// A registry's refusal; most need a data fix on our side, not the learner's.
fn rejected(zh: bool, reg: &str, reason: Option<&str>) -> (String, String) {
    let ours = pick(
        zh,
        (
            String::new(),
            "您不需要做什麼；我們更正資料後會重新上傳。（客服請轉維運人員。）".into(),
        ),
        (
            String::new(),
            "Nothing to do on your side; we will fix the data and upload again. (Support: pass it to ops.)".into(),
        ),
    )
    .1;
    let (why, action) = match reason {
        Some("unknown_person") => pick(
            zh,
            (
                format!("{reg}查無您的個人資料。"),
                format!("請確認您已在{reg}註冊或有資料；確認後請回覆我們，我們會重新上傳。"),
            ),
            (
                format!("The {reg} does not know you as a person."),
                format!("Make sure you are registered on the {reg}, then tell us and we will upload again."),
            ),
        ),
        Some("unknown_unit") => pick(
            zh,
            (
                format!("{reg}不認得您的服務單位代碼。"),
                "請在個人資料中確認服務單位是否正確；更正後請回覆我們，我們會重新上傳。".into(),
            ),
            (
                format!("The {reg} does not know your service unit code."),
                "Check the service unit in your profile; once corrected, tell us and we will upload again.".into(),
            ),
        ),
        Some("already_credited") => pick(
            zh,
            (
                format!("{reg}已經有同一堂課、同一天的時數紀錄（可能是先前以其他方式登錄）。"),
                format!("請先到{reg}查詢是否已有這筆時數；若沒有，請回覆我們查明。"),
            ),
            (
                format!("The {reg} already holds hours for the same course on the same day (perhaps credited another way)."),
                format!("Check on the {reg} whether the hours are there; if not, tell us so we can look into it."),
            ),
        ),
        Some("unknown_course") => pick(
            zh,
            (format!("{reg}查無這堂課的資料。"), ours.clone()),
            (format!("The {reg} does not know this course."), ours),
        ),
        Some("invalid_hours") => pick(
            zh,
            (format!("{reg}不接受這堂課的時數數字。"), ours.clone()),
            (format!("The {reg} refused the number of hours."), ours),
        ),
        Some("invalid_national_id") => pick(
            zh,
            (format!("{reg}不接受這筆紀錄的身分證字號。"), ours.clone()),
            (format!("The {reg} refused the national ID of this record."), ours),
        ),
        _ => pick(
            zh,
            (format!("{reg}認為這筆紀錄的資料有誤。"), ours.clone()),
            (format!("The {reg} found a field of this record invalid."), ours),
        ),
    };
    pick(
        zh,
        (format!("{reg}拒收了這筆時數：{why}"), action.clone()),
        (format!("The {reg} refused these hours. {why}"), action),
    )
}

fn withdrawal_reason(zh: bool, reason: Option<&str>) -> &'static str {
    match (zh, reason) {
        (true, Some("course_not_completed")) => "這堂課的完成紀錄已被取消。",
        (true, Some("course_not_certified")) => "這堂課已沒有這個網站的認證時數。",
        (true, _) => "這筆時數已不符合上傳條件（原因代碼見下）。",
        (false, Some("course_not_completed")) => "the completion was revoked.",
        (false, Some("course_not_certified")) => "the course is no longer certified for it.",
        (false, _) => "they no longer qualify (see the reason code).",
    }
}

/// A short reply to the learner about one course on one registry.
pub fn reply(lang: Lang, course: &str, registry: RegistryKind, e: &Explanation) -> String {
    let reg = lang.registry(registry);
    match lang {
        Lang::ZhTw => format!(
            "您好，關於您「{course}」課程在{reg}的時數：{}{}如有其他問題，歡迎再與我們聯繫。",
            e.meaning, e.action
        ),
        Lang::En => format!(
            "Hello, about your hours for the course \"{course}\" on the {reg}: {} {} Let us know if you have any other question.",
            e.meaning, e.action
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eligibility::Reason;
    use crate::store::State;

    /// Every (state, reason) the daemon can show, as `status` shows it.
    fn every_case() -> Vec<(String, Option<String>)> {
        let mut cases = vec![("awaiting_scan".to_string(), None)];
        for s in State::ALL {
            let s = s.as_str().to_string();
            match s.as_str() {
                "ineligible" | "withdrawing" | "withdrawn" => {
                    for r in Reason::ALL {
                        cases.push((s.clone(), Some(r.as_str().into())));
                    }
                }
                "rejected" => {
                    for c in REGISTRY_CODES {
                        cases.push((s.clone(), Some(c.into())));
                    }
                }
                _ => cases.push((s, None)),
            }
        }
        cases
    }

    fn has_chinese(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn every_state_but_delivered_is_explained_in_both_languages() {
        for registry in RegistryKind::ALL {
            for (state, reason) in every_case() {
                let zh = explain(Lang::ZhTw, registry, &state, reason.as_deref());
                let en = explain(Lang::En, registry, &state, reason.as_deref());
                if state == "delivered" {
                    assert_eq!((zh, en), (None, None));
                    continue;
                }
                let (zh, en) = (zh.unwrap(), en.unwrap());
                let case = format!("{registry:?} {state} {reason:?}");
                assert!(
                    has_chinese(&zh.meaning) && has_chinese(&zh.action),
                    "{case}"
                );
                assert!(!en.meaning.is_empty() && !en.action.is_empty(), "{case}");
                assert!(
                    !en.meaning.contains("這筆"),
                    "English text in Chinese: {case}"
                );
                // No case falls through to the "unknown" text.
                assert!(!zh.meaning.contains("無法辨識"), "{case}");
                assert!(!zh.meaning.contains("目前不符合上傳條件"), "{case}");
            }
        }
    }

    #[test]
    fn the_explanations_give_the_help_pages_advice() {
        let zh = |r: RegistryKind, s: &str, reason: &str| {
            let e = explain(Lang::ZhTw, r, s, Some(reason)).unwrap();
            format!("{}{}", e.meaning, e.action)
        };
        use RegistryKind::*;
        let social = zh(Lifelong, "ineligible", "social_login");
        assert!(
            social.contains("重新研讀") && social.contains("不能補傳"),
            "{social}"
        );
        let convert = zh(Lifelong, "ineligible", "not_civil_servant");
        for must in [
            "我的e政府",
            "自然人轉公務員",
            "再登入",
            "自動上傳",
            "3個工作天",
        ] {
            assert!(convert.contains(must), "{must}: {convert}");
        }
        assert!(convert.contains("終身學習入口網"), "names the registry");
        let cert = zh(Teacher, "ineligible", "certificate_unbound");
        assert!(cert.contains("綁定") && cert.contains("重新研讀"), "{cert}");
        let teacher = zh(Teacher, "ineligible", "personnel_category_not_10");
        assert!(teacher.contains("10 教育人員"), "{teacher}");
        let enved = zh(Enved, "ineligible", "no_enved_account");
        assert!(
            enved.contains("環境教育終身學習網") && enved.contains("帳號"),
            "{enved}"
        );
        let unit = zh(Enved, "ineligible", "service_unit_invalid");
        assert!(unit.contains("服務單位"), "{unit}");
        let member = zh(Lifelong, "ineligible", "member_account");
        assert!(
            member.contains("公務帳號") && member.contains("重新研讀"),
            "{member}"
        );
    }

    #[test]
    fn the_reply_names_the_course_and_the_registry() {
        let e = explain(
            Lang::ZhTw,
            RegistryKind::Lifelong,
            "ineligible",
            Some("not_civil_servant"),
        )
        .unwrap();
        let r = reply(Lang::ZhTw, "ALL 淨零生活", RegistryKind::Lifelong, &e);
        assert!(r.starts_with("您好"), "{r}");
        assert!(
            r.contains("「ALL 淨零生活」") && r.contains("終身學習入口網"),
            "{r}"
        );
        assert!(r.contains(&e.action));
    }
}
