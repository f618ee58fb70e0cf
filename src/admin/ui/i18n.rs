//! The console's two languages. Support staff work in Traditional Chinese
//! and so do the learners they answer; English is there for ops and for
//! anyone searching the docs. Every string of the pages lives here, one
//! struct per language, so a string missing in one language does not
//! compile.

use crate::domain::RegistryKind;

mod ops;
pub use ops::OpsText;

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhTw,
    En,
}

impl Lang {
    /// The `lang` attribute and the value of the `lang` cookie and query key.
    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhTw => "zh-TW",
            Lang::En => "en",
        }
    }

    /// `zh-TW`, `zh`, `en`… as written in the query, the cookie or
    /// `Accept-Language` (case-insensitive, region ignored for English).
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s == "zh" || s.starts_with("zh-") || s.starts_with("zh_") {
            Some(Lang::ZhTw)
        } else if s == "en" || s.starts_with("en-") || s.starts_with("en_") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first language of an `Accept-Language` value the console
    /// speaks, by the listed weights; Chinese when it names neither.
    pub fn from_accept_language(value: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in value.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::parse(tag)
                && q > 0.0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::ZhTw, |(_, l)| l)
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::ZhTw => Lang::En,
            Lang::En => Lang::ZhTw,
        }
    }

    pub fn t(self) -> &'static Text {
        match self {
            Lang::ZhTw => &ZH_TW,
            Lang::En => &EN,
        }
    }

    /// A registry's name as learners know it.
    pub fn registry(self, r: RegistryKind) -> &'static str {
        match (self, r) {
            (Lang::ZhTw, RegistryKind::Lifelong) => "終身學習入口網",
            (Lang::ZhTw, RegistryKind::Teacher) => "全國教師在職進修網",
            (Lang::ZhTw, RegistryKind::Enved) => "環境教育終身學習網",
            (Lang::En, RegistryKind::Lifelong) => "lifelong learning portal",
            (Lang::En, RegistryKind::Teacher) => "teacher in-service network",
            (Lang::En, RegistryKind::Enved) => "environmental-education network",
        }
    }

    /// A delivery state (or `awaiting_scan`) in words, with a symbol so
    /// that colour is never the only sign.
    pub fn state(self, state: &str) -> (&'static str, &'static str) {
        let zh = self == Lang::ZhTw;
        match state {
            "delivered" => ("✔", if zh { "已上傳" } else { "delivered" }),
            "pending" => ("⏳", if zh { "等待上傳" } else { "pending" }),
            "retrying" => ("↻", if zh { "重試中" } else { "retrying" }),
            "ineligible" => (
                "✖",
                if zh {
                    "不符上傳條件"
                } else {
                    "ineligible"
                },
            ),
            "rejected" => ("⊘", if zh { "登錄網站拒收" } else { "rejected" }),
            "failed" => ("⚠", if zh { "上傳失敗" } else { "failed" }),
            "correcting" => ("✎", if zh { "更正中" } else { "correcting" }),
            "withdrawing" => ("↩", if zh { "撤回中" } else { "withdrawing" }),
            "withdrawn" => ("↩", if zh { "已撤回" } else { "withdrawn" }),
            "awaiting_scan" => ("…", if zh { "尚未檢查" } else { "awaiting scan" }),
            _ => ("?", if zh { "未知狀態" } else { "unknown state" }),
        }
    }

    /// An SLA state (see [`crate::sla::SlaState`]) in words.
    pub fn sla(self, sla: &str) -> &'static str {
        let zh = self == Lang::ZhTw;
        match sla {
            "pending" => {
                if zh {
                    "期限內"
                } else {
                    "within time"
                }
            }
            "at_risk" => {
                if zh {
                    "即將逾期"
                } else {
                    "at risk"
                }
            }
            "on_time" => {
                if zh {
                    "準時"
                } else {
                    "on time"
                }
            }
            "late" => {
                if zh {
                    "逾期後上傳"
                } else {
                    "late"
                }
            }
            "breached" => {
                if zh {
                    "已逾期"
                } else {
                    "breached"
                }
            }
            _ => "-",
        }
    }
}

/// Every fixed string of the console, in one language.
pub struct Text {
    pub app: &'static str,
    pub nav_overview: &'static str,
    pub nav_people: &'static str,
    pub nav_resync: &'static str,
    pub nav_queue: &'static str,
    pub nav_sla: &'static str,
    pub nav_audit: &'static str,
    pub signed_in_as: &'static str,
    pub sign_out: &'static str,
    pub switch_to: &'static str,
    pub skip_to_content: &'static str,
    pub footer: &'static str,
    pub login_title: &'static str,
    pub token_label: &'static str,
    pub token_hint: &'static str,
    pub login_button: &'static str,
    pub login_failed: &'static str,
    pub login_slowed: &'static str,
    pub forbidden_title: &'static str,
    pub forbidden_body: &'static str,
    pub csrf_title: &'static str,
    pub csrf_body: &'static str,
    pub not_found_title: &'static str,
    pub overview_title: &'static str,
    pub people_title: &'static str,
    pub id_label: &'static str,
    pub id_hint: &'static str,
    pub look_up: &'static str,
    pub bad_id: &'static str,
    pub no_records: &'static str,
    pub records_of: &'static str,
    pub col_course: &'static str,
    pub col_completed: &'static str,
    pub col_registry: &'static str,
    pub col_hours: &'static str,
    pub col_state: &'static str,
    pub col_receipt: &'static str,
    pub col_eligible_since: &'static str,
    pub col_due: &'static str,
    pub col_sla: &'static str,
    pub col_attempts: &'static str,
    pub col_explanation: &'static str,
    pub reason_code: &'static str,
    pub what_to_do: &'static str,
    pub reply_label: &'static str,
    pub copy_reply: &'static str,
    pub copied: &'static str,
    pub history_link: &'static str,
    pub history_title: &'static str,
    pub no_attempts: &'static str,
    pub col_at: &'static str,
    pub col_action: &'static str,
    pub col_revision: &'static str,
    pub col_http: &'static str,
    pub col_result: &'static str,
    pub col_request_id: &'static str,
    pub col_error: &'static str,
    pub no_delivery: &'static str,
    pub store_error: &'static str,
}

pub static ZH_TW: Text = Text {
    app: "學習時數上傳 客服主控台",
    nav_overview: "總覽",
    nav_people: "查詢學員",
    nav_resync: "重新同步",
    nav_queue: "待處理佇列",
    nav_sla: "時限追蹤",
    nav_audit: "稽核紀錄",
    signed_in_as: "已登入：",
    sign_out: "登出",
    switch_to: "English",
    skip_to_content: "跳到主要內容",
    footer: "hoursync 客服主控台・身分證字號一律遮蔽顯示",
    login_title: "登入",
    token_label: "管理權杖",
    token_hint: "請貼上管理員發給您的權杖。",
    login_button: "登入",
    login_failed: "無法登入，請確認權杖後再試。",
    login_slowed: "登入失敗次數過多，請稍候再試。",
    forbidden_title: "沒有權限",
    forbidden_body: "這個頁面只開放給維運（ops）人員。",
    csrf_title: "表單已失效",
    csrf_body: "這份表單已過期或不是從本站送出。請重新整理頁面後再試一次。",
    not_found_title: "找不到資料",
    overview_title: "總覽",
    people_title: "查詢學員",
    id_label: "身分證字號",
    id_hint: "每次查詢都會記入稽核紀錄（身分證字號遮蔽）。",
    look_up: "查詢",
    bad_id: "身分證字號格式或檢查碼不正確，請再確認。",
    no_records: "查無此學員的課程完成紀錄。",
    records_of: "學員紀錄",
    col_course: "課程",
    col_completed: "完成日期",
    col_registry: "登錄網站",
    col_hours: "時數",
    col_state: "狀態",
    col_receipt: "登錄收據",
    col_eligible_since: "符合條件時間",
    col_due: "應上傳期限",
    col_sla: "時限",
    col_attempts: "上傳次數",
    col_explanation: "說明",
    reason_code: "原因代碼",
    what_to_do: "學員該怎麼做：",
    reply_label: "回覆學員的文字",
    copy_reply: "複製回覆",
    copied: "已複製",
    history_link: "上傳歷程",
    history_title: "上傳歷程",
    no_attempts: "尚無上傳紀錄（或已超過保存期限）。",
    col_at: "時間",
    col_action: "動作",
    col_revision: "版本",
    col_http: "HTTP",
    col_result: "結果",
    col_request_id: "請求編號",
    col_error: "錯誤訊息",
    no_delivery: "查無這筆上傳紀錄。",
    store_error: "資料庫暫時無法回應，請稍後再試；若持續發生請通知維運人員。",
};

pub static EN: Text = Text {
    app: "hoursync support console",
    nav_overview: "Overview",
    nav_people: "Look up a learner",
    nav_resync: "Resync",
    nav_queue: "Queue",
    nav_sla: "SLA",
    nav_audit: "Audit trail",
    signed_in_as: "Signed in as",
    sign_out: "Sign out",
    switch_to: "中文",
    skip_to_content: "Skip to content",
    footer: "hoursync support console · national IDs are always shown masked",
    login_title: "Sign in",
    token_label: "Admin token",
    token_hint: "Paste the token your administrator gave you.",
    login_button: "Sign in",
    login_failed: "Sign-in failed. Check the token and try again.",
    login_slowed: "Too many failed sign-ins. Wait a moment and try again.",
    forbidden_title: "Not allowed",
    forbidden_body: "This page is for ops only.",
    csrf_title: "Form expired",
    csrf_body: "This form expired or was not sent from this site. Reload the page and try again.",
    not_found_title: "Not found",
    overview_title: "Overview",
    people_title: "Look up a learner",
    id_label: "National ID",
    id_hint: "Every lookup is recorded in the audit trail (the ID masked).",
    look_up: "Look up",
    bad_id: "That is not a valid national ID (format or check digit).",
    no_records: "No completions for this learner.",
    records_of: "Records of learner",
    col_course: "Course",
    col_completed: "Completed",
    col_registry: "Registry",
    col_hours: "Hours",
    col_state: "State",
    col_receipt: "Receipt",
    col_eligible_since: "Eligible since",
    col_due: "Due",
    col_sla: "SLA",
    col_attempts: "Attempts",
    col_explanation: "Explanation",
    reason_code: "Reason code",
    what_to_do: "What the learner must do:",
    reply_label: "Reply to the learner",
    copy_reply: "Copy reply",
    copied: "Copied",
    history_link: "History",
    history_title: "Record history",
    no_attempts: "No requests kept for this record (or past the retention).",
    col_at: "Time",
    col_action: "Action",
    col_revision: "Revision",
    col_http: "HTTP",
    col_result: "Result",
    col_request_id: "Request id",
    col_error: "Error",
    no_delivery: "No such record.",
    store_error: "The database did not answer; try again shortly, and tell ops if it persists.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_language_the_console_speaks() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Lang::En);
        assert_eq!(
            Lang::from_accept_language("zh-TW,zh;q=0.9,en;q=0.8"),
            Lang::ZhTw
        );
        assert_eq!(Lang::from_accept_language("fr;q=1,en;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("en;q=0.3,zh;q=0.8"), Lang::ZhTw);
        assert_eq!(Lang::from_accept_language("fr"), Lang::ZhTw);
        assert_eq!(Lang::from_accept_language(""), Lang::ZhTw);
    }
}
