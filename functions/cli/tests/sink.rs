//! `connectorctl sink dry-run` on the sample batches of `events/sink/`: what each record would
//! become, without AWS.

use std::process::Command;

fn dry_run(file: &str, table: &str, json: bool) -> (i32, String, String) {
    let full = format!("{}/../../events/sink/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut args = vec!["sink", "dry-run", &full, "--table", table];
    if json {
        args.push("--json");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_connectorctl"))
        .args(&args)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run connectorctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn records(file: &str, table: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = dry_run(file, table, true);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    doc["records"].as_array().expect("records").clone()
}

#[test]
fn a_batch_shows_each_record_as_write_stale_or_dead_letter_with_the_item_it_would_store() {
    let r = records("confluent-seatool-batch.json", "seatool");
    assert_eq!(r.len(), 4);
    // NC-11-020 twice in one batch: the older one is stale, the newer one is written.
    assert_eq!(
        (r[0]["offset"].as_i64(), r[0]["outcome"].as_str()),
        (Some(1041), Some("stale"))
    );
    assert_eq!(r[2]["id"], "NC-11-020");
    assert!(r[2]["outcome"].as_str().unwrap().starts_with("write"), "{}", r[2]);
    let item = &r[2]["item"];
    assert_eq!(
        (item["PK"].as_str(), item["SK"].as_str()),
        (Some("NC-11-020"), Some("NC-11-020"))
    );
    assert_eq!(item["@kafka"]["offset"].as_i64(), Some(1043));
    assert_eq!(item["@kafka"]["topic"], "aws.ksqldb.seatool.agg.State_Plan");

    let poison = records("confluent-seatool-poison.json", "seatool");
    let dead: Vec<_> = poison.iter().filter(|p| p["outcome"] == "dead-lettered").collect();
    assert!(!dead.is_empty(), "{poison:?}");
    assert!(
        dead.iter().all(|d| !d["reason"].as_str().unwrap_or("").is_empty()),
        "{dead:?}"
    );
    assert!(
        poison.iter().any(|p| p["id"] == "WA-22-0003"),
        "the good record is still written: {poison:?}"
    );

    let tombstone = records("confluent-seatool-tombstone.json", "seatool");
    assert!(
        tombstone.iter().any(|t| t["outcome"] == "delete (a tombstone)"),
        "{tombstone:?}"
    );
}

#[test]
fn the_table_reads_as_a_table_and_bad_input_exits_2() {
    let (code, out, _) = dry_run("confluent-appian-batch.json", "appian", false);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("5 records, Confluent format, for table appian"),
        "{out}"
    );
    assert!(out.contains("RECORD") && out.contains("OUTCOME"), "{out}");

    let (code, _, err) = dry_run("unsupported-sqs-event.json", "seatool", false);
    assert_eq!(code, 2);
    assert!(err.starts_with("connectorctl: "), "{err}");
    let (code, _, err) = dry_run("does-not-exist.json", "seatool", false);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
}
