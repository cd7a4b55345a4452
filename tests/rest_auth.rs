//! The workers' REST API with basic authentication, on the harness's worker `auth` (a Connect
//! cluster of its own, with Kafka Connect's `BasicAuthSecurityRestExtension` set up as the image's
//! entrypoint sets it up): a request without the credentials gets 401, and the monitor as
//! deployed and the control functions send the ones they read from their secret (moto).

use std::time::Duration;

use connector_adapters::connect::{BasicAuth, HttpConnectApi};
use connector_adapters::deployed::deployed_monitor;
use connector_adapters::ecs::EcsTaskDiscovery;
use connector_adapters::secrets::SecretsManagerConfigs;
use connector_core::connect::{ConnectApi, ConnectError, State};
use connector_core::monitor::config::MonitorConfig;
use connector_lambdas::control::{
    ControlConfig, handle_check_ready, handle_create_connector, handle_delete_connector, with_credentials,
};
use connector_tests::{
    create_sink_table, file_sink, put_connector_secret, sdk, task_is, unique, wait_deleted, wait_status,
};
use serde_json::{Value, json};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run through scripts/test"))
}

fn auth() -> BasicAuth {
    BasicAuth {
        username: var("CONNECT_AUTH_USERNAME"),
        password: var("CONNECT_AUTH_PASSWORD"),
    }
}

fn api(auth: Option<BasicAuth>) -> HttpConnectApi {
    HttpConnectApi::new(&var("CONNECT_AUTH_URL"), Duration::from_secs(10))
        .unwrap()
        .with_auth(auth)
}

/// A secret holding `{"username", "password"}`, as the stack's ConnectRestCredentials does.
async fn credentials_secret(auth: &BasicAuth) -> String {
    let name = unique("rest-credentials");
    aws_sdk_secretsmanager::Client::new(&sdk().await)
        .create_secret()
        .name(&name)
        .secret_string(json!({"username": auth.username, "password": auth.password}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
    name
}

#[tokio::test]
async fn a_request_without_the_rest_credentials_or_with_a_wrong_password_gets_401() {
    let url = var("CONNECT_AUTH_URL");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let right = auth();
    for path in ["/", "/connectors", "/health", "/connector-plugins"] {
        let none = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(none.status(), 401, "GET {path} without credentials");
        let wrong = client
            .get(format!("{url}{path}"))
            .basic_auth(&right.username, Some("not-the-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "GET {path} with a wrong password");
        let ok = client
            .get(format!("{url}{path}"))
            .basic_auth(&right.username, Some(&right.password))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "GET {path} with the credentials");
    }
    match api(None).list_expanded().await {
        Err(e @ ConnectError::Unauthorized { status: 401, .. }) => {
            assert!(e.to_string().contains("refused the REST credentials"), "{e}")
        }
        other => panic!("a client without credentials is refused with 401, not {other:?}"),
    }
    assert!(api(Some(right)).list_expanded().await.is_ok());
}

#[tokio::test]
async fn the_control_functions_send_the_credentials_of_their_secret_and_say_401_without_them() {
    let secret = credentials_secret(&auth()).await;
    let url = var("CONNECT_AUTH_URL");
    let lookup = |with_secret: bool| {
        let (url, secret) = (url.clone(), secret.clone());
        move |k: &str| match k {
            "CONNECT_URL" => Some(url.clone()),
            "CONNECT_CREDENTIALS_SECRET" if with_secret => Some(secret.clone()),
            _ => None,
        }
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk().await);
    let bare = ControlConfig::from_lookup(lookup(false)).unwrap();
    let refused = handle_check_ready(&with_credentials(&bare, &secrets).await.unwrap(), &json!({})).await;
    assert_eq!(refused["ready"], false, "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("refused the REST credentials (401)"),
        "{refused}"
    );

    let config = with_credentials(&ControlConfig::from_lookup(lookup(true)).unwrap(), &secrets)
        .await
        .unwrap();
    assert_eq!(config.auth, Some(auth()), "read from {secret}");
    let ready = handle_check_ready(&config, &json!({})).await;
    assert_eq!(ready["ready"], true, "{ready}");

    let sdk = sdk().await;
    let (prefix, name) = (format!("{}/", unique("auth")), unique("auth-sink"));
    let file = std::env::temp_dir().join(format!("{name}.out"));
    put_connector_secret(&sdk, &prefix, &name, &file_sink(&unique("auth-topic"), &file)).await;
    let configs = SecretsManagerConfigs::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let discovery = EcsTaskDiscovery::new(aws_sdk_ecs::Client::new(&sdk));
    let payload = json!({"connectorConfigSecret": format!("{prefix}{name}")});
    let created = handle_create_connector(
        &config,
        &configs,
        &discovery,
        &connector_tests::table_probe().await,
        &payload,
    )
    .await;
    assert_eq!(created["success"], true, "{created}");
    wait_status(
        &api(Some(auth())),
        &name,
        "RUNNING",
        Duration::from_secs(60),
        task_is(State::Running),
    )
    .await;
    let deleted = handle_delete_connector(&config, &discovery, &json!({"connectorName": name})).await;
    assert_eq!(deleted["success"], true, "{deleted}");
    // Deleted through the authenticated client.
    wait_deleted(&api(Some(auth())), &name, Duration::from_secs(30)).await;

    let missing =
        ControlConfig::from_lookup(|k| (k == "CONNECT_CREDENTIALS_SECRET").then(|| unique("absent"))).unwrap();
    let e = with_credentials(&missing, &secrets).await.unwrap_err();
    assert!(
        connector_core::error_chain(&e).contains("cannot read the Kafka Connect REST credentials from secret"),
        "{}",
        connector_core::error_chain(&e)
    );
}

/// The report of one dry run of the monitor as deployed (`deployed_monitor`) on the auth worker.
async fn deployed_dry_run(secret: Option<&str>, prefix: &str, cluster: &str, table: &str) -> Value {
    let url = var("CONNECT_AUTH_URL");
    let config = MonitorConfig::from_lookup(|k| {
        match k {
            "CLUSTER" => Some(cluster),
            "CONNECT_URL" => Some(url.as_str()),
            "CONNECT_CREDENTIALS_SECRET" => secret,
            "CONFIG_SECRET_PREFIX" => Some(prefix),
            "MONITOR_STATE_TABLE" => Some(table),
            "ALERT_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:unused"),
            "RUNBOOK_BASE_URL" => Some("https://runbooks.example/connector/runbooks"),
            _ => None,
        }
        .map(String::from)
    })
    .unwrap();
    let monitor = deployed_monitor(config, &sdk().await).unwrap();
    monitor.dry_run(&json!({"cluster": cluster})).await.unwrap().report
}

#[tokio::test]
async fn the_deployed_monitor_reads_the_rest_credentials_from_their_secret_and_judges_the_worker() {
    let sdk = sdk().await;
    let (prefix, cluster, table) = (format!("{}/", unique("mon-auth")), unique("auth"), unique("auth-state"));
    create_sink_table(&sdk, &table).await;
    let name = unique("mon-auth-sink");
    let sink = file_sink(&unique("auth-topic"), &std::env::temp_dir().join(format!("{name}.out")));
    put_connector_secret(&sdk, &prefix, &name, &sink).await;
    let authed = api(Some(auth()));
    authed.put_config(&name, &sink).await.unwrap();
    wait_status(
        &authed,
        &name,
        "RUNNING",
        Duration::from_secs(60),
        task_is(State::Running),
    )
    .await;

    let secret = credentials_secret(&auth()).await;
    let report = deployed_dry_run(Some(&secret), &prefix, &cluster, &table).await;
    assert_eq!(report["healthy"], true, "{report:#}");
    assert!(
        report.to_string().contains(&name),
        "the connector is judged: {report:#}"
    );

    let refused = deployed_dry_run(None, &prefix, &cluster, &table).await;
    assert_eq!(refused["healthy"], false, "{refused:#}");
    assert!(
        refused.to_string().contains("refused the REST credentials (401)"),
        "the report says why the worker could not be read: {refused:#}"
    );
    authed.delete(&name).await.unwrap();
}
