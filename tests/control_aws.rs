//! ECS discovery and connector configs through the real adapters against moto, and `findTaskIp`
//! over them. An IP that moto invents for a task is asserted on, never dialled.

use connector_adapters::ecs::EcsTaskDiscovery;
use connector_adapters::secrets::SecretsManagerConfigs;
use connector_core::connect::ports::ConfigError;
use connector_core::connect::{ConnectorConfigs, TaskDiscovery};
use connector_lambdas::control::{ControlConfig, ControlFailure, handle_create_connector, handle_find_task_ip};
use connector_tests::{sdk, unique};
use serde_json::json;

/// A Fargate cluster with a task definition that moto can run (it needs container memory).
async fn cluster_with_task_definition(ecs: &aws_sdk_ecs::Client) -> (String, String) {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
    let cluster = unique("connect-cluster");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("create cluster");
    let family = unique("kafka-connect");
    ecs.register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("1024")
        .memory("2048")
        .container_definitions(
            ContainerDefinition::builder()
                .name("connect")
                .image("kafka-connect:test")
                .memory(2048)
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    (cluster, family)
}

async fn run_task(ecs: &aws_sdk_ecs::Client, cluster: &str, family: &str) -> String {
    use aws_sdk_ecs::types::{AwsVpcConfiguration, LaunchType, NetworkConfiguration};
    let subnet = std::env::var("TEST_SUBNET").expect("TEST_SUBNET is set by scripts/test");
    let group = std::env::var("TEST_SG").expect("TEST_SG is set by scripts/test");
    let vpc = AwsVpcConfiguration::builder()
        .subnets(subnet)
        .security_groups(group)
        .build()
        .unwrap();
    let out = ecs
        .run_task()
        .cluster(cluster)
        .task_definition(family)
        .launch_type(LaunchType::Fargate)
        .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
        .send()
        .await
        .expect("run task");
    out.tasks()[0].task_arn().unwrap().to_string()
}

#[tokio::test]
async fn discovery_returns_every_running_task_with_its_ip_and_skips_stopped_ones() {
    let sdk = sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let (cluster, family) = cluster_with_task_definition(&ecs).await;
    let first = run_task(&ecs, &cluster, &family).await;
    let second = run_task(&ecs, &cluster, &family).await;
    let discovery = EcsTaskDiscovery::new(ecs.clone());

    let tasks = discovery.running_tasks(&cluster).await.unwrap();
    let mut arns: Vec<&str> = tasks.iter().map(|t| t.arn.as_str()).collect();
    arns.sort();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(arns, expected, "both running tasks (a deployment) are returned");
    for t in &tasks {
        let octets: Vec<u8> = t.ip.split('.').map(|o| o.parse().expect("IPv4 octet")).collect();
        assert_eq!(octets.len(), 4, "{}", t.ip);
    }
    let starts: Vec<_> = tasks.iter().map(|t| t.started_at_millis).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first: {starts:?}");

    ecs.stop_task()
        .cluster(&cluster)
        .task(&first)
        .reason("test")
        .send()
        .await
        .expect("stop task");
    let tasks = discovery.running_tasks(&cluster).await.unwrap();
    assert_eq!(
        tasks.iter().map(|t| t.arn.as_str()).collect::<Vec<_>>(),
        [second.as_str()],
        "the stopped task is gone"
    );

    // findTaskIp, with the seed's payload, answers that task's IP.
    let config = ControlConfig::from_lookup(|_| None).unwrap();
    let payload = json!({"Context": {"Execution": {"Input": {"cluster": cluster}}}});
    let answer = handle_find_task_ip(&config, &discovery, &payload).await.unwrap();
    assert_eq!(answer, json!({"ip": tasks[0].ip, "success": true}));
}

#[tokio::test]
async fn find_task_ip_names_the_cluster_when_no_task_runs() {
    let sdk = sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let (cluster, _) = cluster_with_task_definition(&ecs).await;
    let discovery = EcsTaskDiscovery::new(ecs);
    let config = ControlConfig::from_lookup(|k| (k == "CLUSTER").then(|| cluster.clone())).unwrap();
    let err = handle_find_task_ip(&config, &discovery, &json!({})).await.unwrap_err();
    assert!(matches!(err, ControlFailure::Locate(_)));
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NoRunningTask");
    assert!(
        diagnostic.error_message.contains(&cluster),
        "{}",
        diagnostic.error_message
    );

    let none = ControlConfig::from_lookup(|_| None).unwrap();
    let err = handle_find_task_ip(&none, &discovery, &json!({})).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "NoTarget");
}

#[tokio::test]
async fn configs_load_by_prefix_and_a_bad_secret_is_reported_by_name_while_the_others_load() {
    let sdk = sdk().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let prefix = format!("{}/", unique("mako/connector"));
    let put = |name: String, body: String| {
        let client = client.clone();
        async move {
            client
                .create_secret()
                .name(name)
                .secret_string(body)
                .send()
                .await
                .expect("create secret")
        }
    };
    let good = |name: &str| {
        json!({"name": name, "config": {"connector.class": "X", "topics": "t", "aws.secret.access.key": "hunter2"}})
            .to_string()
    };
    put(format!("{prefix}seatool"), good("seatool-sink")).await;
    put(format!("{prefix}appian"), good("appian-sink")).await;
    put(format!("{prefix}broken"), "{\"name\": \"x\"}".into()).await;
    put(format!("other/{prefix}seatool"), good("elsewhere")).await;
    // More than one page: moto pages ListSecrets too.
    for i in 0..3 {
        put(format!("{prefix}extra-{i}"), good(&format!("extra-{i}"))).await;
    }

    let configs = SecretsManagerConfigs::new(client.clone());
    let loaded = configs.list(&prefix).await.unwrap();
    let mut names: Vec<&str> = loaded.configs.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["appian-sink", "extra-0", "extra-1", "extra-2", "seatool-sink"]);
    assert_eq!(loaded.problems.len(), 1);
    let problem = loaded.problems[0].to_string();
    assert!(
        problem.contains(&format!("{prefix}broken")) && problem.contains("`config` is missing"),
        "{problem}"
    );
    let shown = format!("{:?}", loaded.configs[0].redacted());
    assert!(!shown.contains("hunter2"), "{shown}");

    assert!(matches!(
        configs.get(&unique("absent")).await,
        Err(ConfigError::NotFound { .. })
    ));
}

/// A warm function lists the secrets every run (a removed one is gone at once) and reads a
/// secret's value again only when its current version changes: counted at the fault proxy.
#[tokio::test]
async fn secrets_are_listed_every_run_and_a_value_is_read_once_per_version() {
    use connector_tests::faults::{Faults, sdk_through_faults};
    let client = aws_sdk_secretsmanager::Client::new(&sdk_through_faults().await);
    let prefix = format!("{}/", unique("mako/connector"));
    let (kept, removed) = (format!("{prefix}kept"), format!("{prefix}removed"));
    let body =
        |topics: &str| json!({"name": "kept-sink", "config": {"connector.class": "X", "topics": topics}}).to_string();
    for (name, text) in [
        (&kept, body("t1")),
        (&removed, body("t1").replace("kept-sink", "removed-sink")),
    ] {
        client
            .create_secret()
            .name(name)
            .secret_string(text)
            .send()
            .await
            .expect("create secret");
    }
    let reads = |name: &str| {
        let faults = Faults::for_target(name);
        async move { faults.counts().await.get("GetSecretValue").copied().unwrap_or(0) }
    };
    let configs = SecretsManagerConfigs::new(client.clone());
    let names = |loaded: &connector_core::connect::ports::LoadedConfigs| {
        loaded.configs.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&configs.list(&prefix).await.unwrap()),
        ["kept-sink", "removed-sink"]
    );
    assert_eq!((reads(&kept).await, reads(&removed).await), (1, 1));

    // The next run reads no value; a clone (the same function) shares the cache.
    assert_eq!(names(&configs.clone().list(&prefix).await.unwrap()).len(), 2);
    assert_eq!(
        (reads(&kept).await, reads(&removed).await),
        (1, 1),
        "values are cached by version"
    );

    // A new version is read at the next run; a removed secret is gone at the next run.
    client
        .put_secret_value()
        .secret_id(&kept)
        .secret_string(body("t2"))
        .send()
        .await
        .expect("new version");
    client
        .delete_secret()
        .secret_id(&removed)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete secret");
    let loaded = configs.list(&prefix).await.unwrap();
    assert_eq!(
        names(&loaded),
        ["kept-sink"],
        "a removed secret is not desired any more"
    );
    assert_eq!(loaded.configs[0].config["topics"], "t2", "the new version's value");
    assert_eq!(reads(&kept).await, 2);
}

/// The config carries the licence: createConnector sends it only to the address of a RUNNING
/// task of its cluster (moto's tasks, whose invented addresses are never dialled). An accepted
/// address reaches the next step, reading the secret, which fails here because it is absent.
#[tokio::test]
async fn create_connector_refuses_an_ip_that_is_not_a_running_task_of_its_cluster() {
    let sdk = sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let (cluster, family) = cluster_with_task_definition(&ecs).await;
    run_task(&ecs, &cluster, &family).await;
    let discovery = EcsTaskDiscovery::new(ecs);
    let task_ip = discovery.running_tasks(&cluster).await.unwrap()[0].ip.clone();
    let configs = SecretsManagerConfigs::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let secret = unique("mako/connector/licensed");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret)
        .secret_string(json!({"name": "x", "config": {"confluent.license": "secret licence"}}).to_string())
        .send()
        .await
        .expect("create secret");
    let config = ControlConfig::from_lookup(|k| (k == "CLUSTER").then(|| cluster.clone())).unwrap();
    let create = |ip: &str, secret: &str| json!({"Payload": {"ip": ip}, "connectorConfigSecret": secret});

    for (ip, says) in [
        ("host.example:443/", "is not an IP address"),
        (&format!("{task_ip}:443"), "is not an IP address"),
        (
            "203.0.113.9",
            "is not the address of a RUNNING Kafka Connect task of ECS cluster",
        ),
    ] {
        let answer = handle_create_connector(
            &config,
            &configs,
            &discovery,
            &connector_tests::table_probe().await,
            &create(ip, &secret),
        )
        .await;
        assert_eq!(
            (&answer["success"], &answer["ip"]),
            (&json!(false), &json!(ip)),
            "{answer}"
        );
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with("refused: ") && error.contains(says), "{ip}: {error}");
        assert!(
            error.contains(&cluster) || says.contains("IP address"),
            "names the cluster: {error}"
        );
    }

    // A payload's cluster does not widen what CLUSTER allows.
    let other = json!({"Payload": {"ip": "203.0.113.9"}, "cluster": "another", "connectorConfigSecret": secret});
    let answer = handle_create_connector(
        &config,
        &configs,
        &discovery,
        &connector_tests::table_probe().await,
        &other,
    )
    .await;
    assert!(answer["error"].as_str().unwrap().contains(&cluster), "{answer}");

    let absent = unique("absent");
    let answer = handle_create_connector(
        &config,
        &configs,
        &discovery,
        &connector_tests::table_probe().await,
        &create(&task_ip, &absent),
    )
    .await;
    assert_eq!(answer["success"], false, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        !error.starts_with("refused") && error.contains("not found"),
        "the task's address is accepted: {error}"
    );
}
