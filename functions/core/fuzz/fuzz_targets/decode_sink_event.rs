//! Any bytes as a sink event: decoding and mapping never panic, and whatever decodes maps every
//! record to exactly one outcome for both tables.
#![no_main]

use connector_core::sink::decode_batch;
use connector_core::sink::mapping::{Table, map_record};
use connector_core::sink::plan::plan_batch;
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
        }
    }
});
