//! The catalogue (`alarms/catalogue.json`), the code and the runbooks agree: every category and
//! cause the code knows is in the catalogue with the same severity and restart policy, and every
//! id has a runbook page, and every page an id.

use std::collections::BTreeSet;

use connector_core::monitor::judge::cause::Cause;
use connector_core::monitor::judge::finding::Category;
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
        .chain(Category::SINK.iter())
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
    let listed: BTreeSet<(String, bool, bool)> = c["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let flag = |k: &str| e[k].as_bool().unwrap_or_else(|| panic!("{e}: no {k}"));
            (
                e["id"].as_str().unwrap().to_string(),
                flag("restarted"),
                flag("transient"),
            )
        })
        .collect();
    let coded: BTreeSet<(String, bool, bool)> = Cause::ALL
        .iter()
        .map(|c| (c.id().to_string(), c.is_restartable(), c.is_transient()))
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
        "--function-name $P-testConnectors",
        "aws logs tail /aws/fargate/$P-kafka-connect --since 10m",
        "-deleteConnector",
        "-findTaskIp",
        "-createConnector",
        "--force-new-deployment",
    ] {
        assert!(all.contains(step), "no runbook has {step:?}");
    }
}

/// The shell of a page: its fenced `bash` blocks, and inline code that is an `aws` command.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match (&mut block, line.trim_start()) {
            (None, l) if l.starts_with("```bash") => block = Some(String::new()),
            (Some(b), l) if l.starts_with("```") => {
                out.push(std::mem::take(b));
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => out.extend(
                line.split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|c| c.starts_with("aws "))
                    .map(str::to_string),
            ),
        }
    }
    out
}

#[test]
fn runbook_commands_work_as_pasted() {
    for entry in std::fs::read_dir(root("runbooks")).unwrap() {
        let path = entry.unwrap().path();
        let page = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let shell = commands(&text).join("\n");
        // Every variable a command uses is set on the page (`NAME=` or `read -r name`).
        let mut set: BTreeSet<String> = BTreeSet::new();
        for line in shell.lines() {
            for part in line.split([';', '&', '|']) {
                if let Some((name, _)) = part.trim().split_once('=')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                {
                    set.insert(name.to_string());
                }
            }
        }
        for (i, _) in shell.match_indices('$') {
            let name: String = shell[i + 1..]
                .trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            assert!(
                name.is_empty() || set.contains(&name),
                "runbooks/{page} uses ${name} and never sets it"
            );
        }
        // Comments may say what a value stands for; the commands themselves have none left.
        let code: String = shell
            .lines()
            .map(|l| l.split(" # ").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        for placeholder in ["<project>", "<stage>", "<connector-name>", "<task-id>", "<secret-path>"] {
            assert!(
                !code.contains(placeholder),
                "runbooks/{page}: {placeholder} in a command"
            );
        }
        for invoke in shell.split("aws lambda invoke").skip(1) {
            // The command runs to the first line end that is not continued with `\`.
            let end = invoke
                .match_indices('\n')
                .find(|(i, _)| !invoke[..*i].ends_with('\\'))
                .map_or(invoke.len(), |(i, _)| i);
            assert!(
                invoke[..end].contains(" --cli-binary-format raw-in-base64-out"),
                "runbooks/{page}: `aws lambda invoke` without --cli-binary-format raw-in-base64-out (AWS CLI v2 reads --payload as base64)"
            );
        }
        assert!(
            !shell.lines().any(|l| l.contains("--payload '") && l.contains('$')),
            "runbooks/{page}: a single-quoted --payload names a variable the shell will not expand"
        );
    }
}
