//! The configure-connector state machine (`infra/configure-connector.asl.json`): its structure,
//! and a walk through it with the control functions' real answer shapes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

fn definition() -> Value {
    let path = format!("{}/../infra/configure-connector.asl.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read the ASL")).expect("the ASL is JSON")
}

/// Every state a state can go to next.
fn successors(state: &Value) -> Vec<String> {
    let mut next: Vec<String> = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str() {
            next.push(s.to_string());
        }
    };
    push(&state["Next"]);
    push(&state["Default"]);
    for c in state["Choices"].as_array().into_iter().flatten() {
        push(&c["Next"]);
    }
    for c in state["Catch"].as_array().into_iter().flatten() {
        push(&c["Next"]);
    }
    next
}

#[test]
fn every_state_is_reachable_every_path_can_end_and_every_choice_has_a_default() {
    let asl = definition();
    let states = asl["States"].as_object().expect("States");
    let names: BTreeSet<&str> = states.keys().map(String::as_str).collect();
    let start = asl["StartAt"].as_str().expect("StartAt");
    assert!(names.contains(start));

    let graph: BTreeMap<&str, Vec<String>> = states.iter().map(|(n, s)| (n.as_str(), successors(s))).collect();
    for (name, next) in &graph {
        for n in next {
            assert!(names.contains(n.as_str()), "{name} goes to unknown state {n}");
        }
        let kind = states[*name]["Type"].as_str().unwrap();
        let terminal = matches!(kind, "Succeed" | "Fail") || states[*name]["End"] == true;
        assert!(
            terminal || !next.is_empty(),
            "{name} ({kind}) has no Next and does not end"
        );
        if kind == "Choice" {
            assert!(states[*name]["Default"].is_string(), "Choice {name} has no Default");
        }
    }
    // Reachable from StartAt.
    let mut seen = BTreeSet::from([start.to_string()]);
    let mut todo = vec![start.to_string()];
    while let Some(s) = todo.pop() {
        for n in &graph[s.as_str()] {
            if seen.insert(n.clone()) {
                todo.push(n.clone());
            }
        }
    }
    assert_eq!(
        seen.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        names,
        "unreachable states"
    );
    // From every state a terminal state can be reached (no loop without a way out).
    for name in &names {
        let mut seen = BTreeSet::from([name.to_string()]);
        let mut todo = vec![name.to_string()];
        let mut ends = false;
        while let Some(s) = todo.pop() {
            let kind = states[&s]["Type"].as_str().unwrap();
            ends |= matches!(kind, "Succeed" | "Fail");
            for n in &graph[s.as_str()] {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        assert!(ends, "no way to finish from {name}");
    }
    assert!(names.iter().any(|n| states[*n]["Type"] == "Succeed"));
    assert!(
        names.iter().any(|n| states[*n]["Type"] == "Fail"
            && states[*n]["Error"].is_string()
            && states[*n]["Cause"].is_string())
    );
}

#[test]
fn every_lambda_task_retries_service_errors_and_keeps_its_input() {
    let asl = definition();
    for (name, state) in asl["States"].as_object().unwrap() {
        if state["Type"] != "Task" {
            continue;
        }
        let retried: Vec<&str> = state["Retry"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no Retry"))
            .iter()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap().iter().filter_map(Value::as_str))
            .collect();
        for error in [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
        ] {
            assert!(retried.contains(&error), "{name} does not retry {error}");
        }
        // The result goes under $.Payload (or $.error when caught), never over the whole input.
        assert_eq!(state["ResultPath"], "$.Payload", "{name}");
        for c in state["Catch"].as_array().unwrap() {
            assert_eq!(c["ResultPath"], "$.error", "{name} catch must keep the input");
        }
        assert!(
            state["Parameters"]["FunctionName"].as_str().unwrap().starts_with("${"),
            "{name}: substituted ARN"
        );
    }
    // The loop is bounded.
    let limit = &asl["States"]["TooManyAttempts"]["Choices"][0];
    assert!(
        limit["NumericGreaterThanEquals"]
            .as_u64()
            .is_some_and(|n| n > 0 && n <= 100),
        "{limit}"
    );
}

/// A small interpreter for the subset this ASL uses (Pass with Result/Parameters, Task through a
/// stand-in Lambda, Choice on booleans and numbers, Wait, Succeed, Fail), enough to check that
/// the data flows as intended.
fn run(
    asl: &Value,
    input: Value,
    lambda: &mut dyn FnMut(&str, &Value) -> Result<Value, String>,
) -> (String, Value, Vec<String>) {
    let context = json!({"Execution": {"Input": input.clone()}});
    let mut data = input;
    let mut at = asl["StartAt"].as_str().unwrap().to_string();
    let mut path = Vec::new();
    for _ in 0..500 {
        path.push(at.clone());
        let state = &asl["States"][&at];
        let next = |s: &Value| s["Next"].as_str().map(String::from);
        match state["Type"].as_str().unwrap() {
            "Pass" => {
                let result = if state["Result"].is_null() {
                    resolve(&state["Parameters"], &data, &context)
                } else {
                    state["Result"].clone()
                };
                set(&mut data, state["ResultPath"].as_str().unwrap(), result);
                at = next(state).unwrap();
            }
            "Task" => {
                let payload = resolve(&state["Parameters"]["Payload"], &data, &context);
                match lambda(state["Parameters"]["FunctionName"].as_str().unwrap(), &payload) {
                    Ok(answer) => {
                        let selected = resolve(&state["ResultSelector"], &json!({"Payload": answer}), &context);
                        set(&mut data, state["ResultPath"].as_str().unwrap(), selected);
                        at = next(state).unwrap();
                    }
                    Err(error) => {
                        let catch = &state["Catch"][0];
                        set(
                            &mut data,
                            catch["ResultPath"].as_str().unwrap(),
                            json!({"Error": error}),
                        );
                        at = catch["Next"].as_str().unwrap().to_string();
                    }
                }
            }
            "Choice" => {
                let chosen = state["Choices"].as_array().unwrap().iter().find(|c| {
                    let v = get(&data, c["Variable"].as_str().unwrap());
                    if let Some(b) = c.get("BooleanEquals") {
                        v == *b
                    } else {
                        v.as_f64()
                            .zip(c["NumericGreaterThanEquals"].as_f64())
                            .is_some_and(|(v, n)| v >= n)
                    }
                });
                at = chosen
                    .map_or(&state["Default"], |c| &c["Next"])
                    .as_str()
                    .unwrap()
                    .to_string();
            }
            "Wait" => at = next(state).unwrap(),
            kind @ ("Succeed" | "Fail") => return (kind.to_string(), data, path),
            other => panic!("state type {other} is not modelled"),
        }
    }
    panic!("no end after 500 steps: {path:?}");
}

fn get(data: &Value, path: &str) -> Value {
    let pointer = path.trim_start_matches('$').replace('.', "/");
    data.pointer(&pointer).cloned().unwrap_or(Value::Null)
}

fn set(data: &mut Value, path: &str, value: Value) {
    let key = path.trim_start_matches("$.");
    data[key] = value;
}

/// Resolves `"x.$": "$..."` / `"x.$": "$$"` / `States.MathAdd(...)` references in a template.
fn resolve(template: &Value, data: &Value, context: &Value) -> Value {
    match template {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                match k.strip_suffix(".$") {
                    Some(key) => {
                        let expr = v.as_str().unwrap();
                        let value = if expr == "$$" {
                            context.clone()
                        } else if let Some(args) =
                            expr.strip_prefix("States.MathAdd(").and_then(|a| a.strip_suffix(')'))
                        {
                            let (a, b) = args.split_once(", ").unwrap();
                            json!(get(data, a).as_i64().unwrap() + b.parse::<i64>().unwrap())
                        } else {
                            get(data, expr)
                        };
                        out.insert(key.to_string(), value);
                    }
                    None => {
                        out.insert(k.clone(), resolve(v, data, context));
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[test]
fn the_ip_survives_a_failed_create_and_the_functions_get_the_seed_payloads() {
    let asl = definition();
    let input = json!({"cluster": "mako-connector-main-connect", "connectorConfigSecret": "mako/connector/seatool"});
    let mut calls: Vec<(String, Value)> = Vec::new();
    let mut creates = 0;
    let (end, data, path) = run(&asl, input, &mut |function, payload| {
        calls.push((function.to_string(), payload.clone()));
        match function {
            "${FindTaskIpFunctionArn}" => Ok(json!({"ip": "10.0.1.25", "success": true})),
            "${CheckIfConnectIsReadyFunctionArn}" => {
                Ok(json!({"ip": payload["Payload"]["ip"], "ready": true, "success": true}))
            }
            "${CreateConnectorFunctionArn}" => {
                creates += 1;
                match creates {
                    // First a refusal (success:false, ip echoed), then a Lambda error, then success.
                    1 => Ok(json!({"ip": payload["Payload"]["ip"], "success": false, "error": "worker error (500)"})),
                    2 => Err("Lambda.Unknown".into()),
                    _ => Ok(
                        json!({"ip": payload["Payload"]["ip"], "success": true, "connector": "seatool-sink", "created": true}),
                    ),
                }
            }
            other => panic!("unknown function {other}"),
        }
    });
    assert_eq!(end, "Succeed", "{path:?}");
    assert_eq!(data["Payload"]["ip"], "10.0.1.25");
    assert_eq!(data["loop"]["attempts"], 2, "two failed rounds were counted");
    let find = &calls[0].1;
    assert_eq!(
        find["Context"]["Execution"]["Input"]["cluster"], "mako-connector-main-connect",
        "seed findTaskIp payload"
    );
    let check = calls.iter().find(|(f, _)| f.contains("CheckIfConnect")).unwrap();
    assert_eq!(
        check.1,
        json!({"Payload": {"ip": "10.0.1.25"}}),
        "seed checkIfConnectIsReady payload"
    );
    let create = calls.iter().rev().find(|(f, _)| f.contains("CreateConnector")).unwrap();
    assert_eq!(
        create.1["Payload"],
        json!({"ip": "10.0.1.25"}),
        "the ip survived the failed creates"
    );
    assert_eq!(
        create.1["Context"]["Execution"]["Input"]["connectorConfigSecret"],
        "mako/connector/seatool"
    );
}

#[test]
fn a_worker_that_never_gets_ready_ends_in_the_fail_state() {
    let asl = definition();
    let (end, data, _) = run(
        &asl,
        json!({"cluster": "c", "connectorConfigSecret": "s"}),
        &mut |function, payload| {
            Ok(match function {
                "${FindTaskIpFunctionArn}" => json!({"ip": "10.0.1.25", "success": true}),
                _ => json!({"ip": payload["Payload"]["ip"], "ready": false, "success": true}),
            })
        },
    );
    assert_eq!(end, "Fail");
    assert_eq!(data["loop"]["attempts"], 30);
}
