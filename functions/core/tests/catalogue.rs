//! The catalogue (`alarms/catalogue.json`), the code and the runbooks agree: every category and
//! cause the code knows is in the catalogue with the same severity and restart policy, and every
//! id has a runbook page, and every page an id.

use std::collections::BTreeSet;

use connector_core::monitor::cause::Cause;
use connector_core::monitor::finding::Category;
use serde_json::Value;

fn root(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn catalogue() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root("alarms/catalogue.json")).unwrap()).unwrap()
}

#[test]
fn the_code_and_the_catalogue_name_the_same_categories_with_the_same_severities() {
    let c = catalogue();
    let listed: BTreeSet<(String, String)> = c["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let coded: BTreeSet<(String, String)> = Category::CONNECT
        .iter()
        .chain(Category::ECS.iter())
        .map(|c| (c.id().to_string(), c.severity().as_str().to_string()))
        .collect();
    assert_eq!(listed, coded);
    for e in c["categories"].as_array().unwrap() {
        assert!(e["monitorAction"].as_str().is_some_and(|a| !a.is_empty()), "{e}");
    }
}

#[test]
fn the_code_and_the_catalogue_agree_on_which_causes_are_restarted() {
    let c = catalogue();
    let listed: BTreeSet<(String, bool)> = c["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e["restarted"].as_bool().unwrap()))
        .collect();
    let coded: BTreeSet<(String, bool)> = Cause::ALL
        .iter()
        .map(|c| (c.id().to_string(), c.is_restartable()))
        .collect();
    assert_eq!(listed, coded);
}

#[test]
fn every_id_has_a_runbook_page_and_every_page_an_id() {
    let c = catalogue();
    let mut ids = BTreeSet::new();
    for section in ["categories", "causes", "alarms"] {
        for e in c[section].as_array().unwrap() {
            let id = e["id"].as_str().unwrap().to_string();
            assert_eq!(e["runbook"].as_str(), Some(format!("runbooks/{id}.md").as_str()), "{e}");
            assert!(ids.insert(id.clone()), "{id} is listed twice");
        }
    }
    let pages: BTreeSet<String> = std::fs::read_dir(root("runbooks"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .map(|n| n.trim_end_matches(".md").to_string())
        .collect();
    assert_eq!(pages, ids, "runbooks/ and alarms/catalogue.json differ");
    for id in &ids {
        let text = std::fs::read_to_string(root(&format!("runbooks/{id}.md"))).unwrap();
        for heading in [
            "## What it means",
            "## How to confirm",
            "## How to fix",
            "## When to escalate",
        ] {
            assert!(text.contains(heading), "runbooks/{id}.md lacks {heading}");
        }
    }
}

#[test]
fn the_seed_troubleshooting_steps_are_all_in_the_runbooks() {
    let all: String = std::fs::read_dir(root("runbooks"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    for step in [
        "--function-name <project>-connector-<stage>-testConnectors",
        "aws logs tail /aws/fargate/<project>-connector-<stage>-kafka-connect --since 10m",
        "-deleteConnector",
        "-findTaskIp",
        "-createConnector",
        "--force-new-deployment",
    ] {
        assert!(all.contains(step), "no runbook has {step:?}");
    }
}
