//! The console's ops tests' daemon, and a console session over plain HTTP.

use super::console::{FormPairs, audit, fixture_with_rejections, sign_in};
use super::*;
use hoursync::domain::RegistryKind;
use hoursync::store::{Outcome, SharedStore, State};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// A daemon process serving the console: the fixture imported and judged,
/// the simulator rejecting course `LL` (`unknown_course`), and one
/// lifelong record given up on (`failed`) before the daemon started.
pub struct Ops {
    pub _env: TestEnv,
    pub _sim: hoursync::simulator::Simulator,
    pub store: SharedStore,
    pub base: String,
    pub _daemon: tokio::process::Child,
    /// The failed delivery, and its learner's national ID.
    pub failed: i64,
    pub learner: String,
}

impl Ops {
    pub async fn start() -> Ops {
        let env = TestEnv::new(Backend::Sqlite).await;
        let (sim, store) = fixture_with_rejections(&env).await;
        let clock = clock();
        hoursync::scan::scan_once(store.as_ref(), clock.as_ref())
            .await
            .unwrap();
        let now = clock.now_ms();
        let claimed = store
            .claim(RegistryKind::Lifelong, "test", now, now + 60_000, 1)
            .await
            .unwrap();
        let failed = claimed[0].id;
        let gave_up = Outcome::Failed {
            id: failed,
            revision: claimed[0].revision,
            next_attempt_at: now,
            error: "HTTP 503".into(),
            give_up: true,
        };
        store
            .record_outcomes("test", &[gave_up], &[], now)
            .await
            .unwrap();
        let learner = store
            .delivery(failed)
            .await
            .unwrap()
            .unwrap()
            .national_id
            .expose()
            .to_string();
        let (daemon, base) = env.spawn_serving_daemon(&sim, &[]);
        let http = reqwest::Client::new();
        wait_for(Duration::from_secs(30), "the admin server", || async {
            http.get(format!("{base}/healthz")).send().await.is_ok()
        })
        .await;
        wait_drained(&store, Duration::from_secs(60)).await;
        Ops {
            _env: env,
            _sim: sim,
            store,
            base,
            _daemon: daemon,
            failed,
            learner,
        }
    }

    pub async fn state_of(&self, id: i64) -> State {
        self.store.delivery(id).await.unwrap().unwrap().state
    }

    /// Audit entries, newest first, from the API.
    pub async fn audit(&self) -> Vec<Value> {
        audit(&self.base).await
    }
}

/// A signed-in console session over plain HTTP: its cookie and CSRF token.
pub struct Session {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub async fn sign_in(base: &str, token: &str) -> Session {
        let http = super::console::client();
        let (cookie, csrf) = sign_in(&http, base, token).await;
        Session {
            http,
            base: base.to_string(),
            cookie,
            csrf,
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form_pairs(pairs)
            .send()
            .await
            .unwrap()
    }
}
