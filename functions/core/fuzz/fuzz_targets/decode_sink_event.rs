//! Any bytes as a sink event: decoding and mapping never panic, whatever decodes maps every
//! record to exactly one outcome for both tables, and every dead letter is sendable (size,
//! characters) and reads back as its record.
#![no_main]

use connector_core::sink::decode_batch;
use connector_core::sink::mapping::{Table, map_record};
use connector_core::sink::plan::{ClaimCheck, plan_batch, read_letter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(batch) = decode_batch(&event) else { return };
    for table in [Table::Seatool, Table::Appian] {
        for record in &batch.records {
            let _ = map_record(table, record);
        }
        let plan = plan_batch(table, &batch.records);
        let decided = plan.decided.iter().filter(|d| d.is_some()).count();
        assert_eq!(decided + plan.writes.len(), batch.records.len());
        for (_, letter) in &plan.dead_letters {
            // Always sendable: within the size given and only characters SQS takes.
            let message = letter.to_message(4096);
            assert!(message.len() <= 4096 || letter.key.is_none() && letter.value.is_none());
            assert!(connector_core::sink::plan::sqs_text(&message));
            // Read back, a letter that was not cut is the record it was.
            let whole = letter.full_message();
            let read = read_letter(&whole).expect("a whole letter reads back");
            assert_eq!(read.record.coordinates, letter.coordinates);
            assert_eq!(read.record.value.raw_text(), letter.value);
            assert_eq!(read.record.key.raw_text(), letter.key);
            // A claim check always fits and never reads back as a record.
            let claim = ClaimCheck { bucket: "b".into(), key: letter.claim_key("0"), sha256: "0".into(), bytes: whole.len() };
            // SQS's limit less room for attributes, as the adapter sends; topics are short in Kafka.
            let check = letter.claim_message(&claim, 261_120);
            assert!(check.len() <= 261_120 && connector_core::sink::plan::sqs_text(&check), "{check}");
            assert!(read_letter(&check).is_err());
        }
    }
});
