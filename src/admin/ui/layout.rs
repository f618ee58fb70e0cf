//! The page shell every console page shares: a header with the links the
//! caller's role may use, the language switch and sign-out, the page's
//! content, and a footer.

use super::i18n::Lang;
use crate::admin::auth::{Caller, Role};
use maud::{DOCTYPE, Markup, html};

/// What the shell needs to know about the request.
pub struct Ctx<'a> {
    /// `None` on the sign-in page.
    pub caller: Option<&'a Caller>,
    pub lang: Lang,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: &'a str,
    /// The request's path, for the language switch.
    pub path: &'a str,
}

/// A whole page: `title` is shown in the tab and as the heading.
pub fn page(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    let t = ctx.lang.t();
    let v = super::asset_version();
    let other = ctx.lang.other();
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · " (t.app) }
                link rel="stylesheet" href={ "/ui/static/app.css?v=" (v) };
                script src={ "/ui/static/app.js?v=" (v) } defer {}
            }
            body {
                a class="skip" href="#main" { (t.skip_to_content) }
                header class="top" {
                    a class="brand" href="/ui/" { (t.app) }
                    @if let Some(caller) = ctx.caller {
                        nav aria-label="main" {
                            ul {
                                li { a href="/ui/" { (t.nav_overview) } }
                                li { a href="/ui/people" { (t.nav_people) } }
                                li { a href="/ui/resync" { (t.nav_resync) } }
                                @if caller.role >= Role::Ops {
                                    li { a href="/ui/queue" { (t.nav_queue) } }
                                    li { a href="/ui/sla" { (t.nav_sla) } }
                                    li { a href="/ui/audit" { (t.nav_audit) } }
                                }
                            }
                        }
                    }
                    div class="tools" {
                        a href={ (ctx.path) "?lang=" (other.code()) } lang=(other.code()) hreflang=(other.code()) { (t.switch_to) }
                        @if let Some(caller) = ctx.caller {
                            span class="who" { (t.signed_in_as) " " (caller.name) " (" (role_name(caller.role)) ")" }
                            form method="post" action="/ui/logout" class="inline" {
                                input type="hidden" name="csrf" value=(ctx.csrf);
                                button type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer { (t.footer) }
            }
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Support => "support",
        Role::Ops => "ops",
    }
}
