use std::path::PathBuf;

use super::*;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/webex")
}

/// Every `(key, value)` pair in a JSON document whose key names an id (`id`, `…Id`, `filter`).
fn id_fields(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                if let serde_json::Value::String(text) = child {
                    if key == "id" || key.ends_with("Id") {
                        out.push((key.clone(), text.clone()));
                    } else if key == "filter" {
                        // `roomId=<hydra>`: the filter carries an id too.
                        if let Some((filter_key, id)) = text.split_once('=') {
                            out.push((filter_key.to_owned(), id.to_owned()));
                        }
                    }
                }
                id_fields(child, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| id_fields(item, out)),
        _ => {}
    }
}

fn all_fixture_ids() -> Vec<(String, String, String)> {
    let mut ids = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 5, "fixtures missing: {entries:?}");
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
        let mut fields = Vec::new();
        id_fields(&json, &mut fields);
        let file = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        ids.extend(
            fields
                .into_iter()
                .map(|(key, value)| (file.clone(), key, value)),
        );
    }
    ids
}

fn is_masked(value: &str) -> bool {
    value.chars().all(|c| c == '*')
}

#[test]
fn every_fixture_id_decodes_with_the_function_for_its_kind() {
    let ids = all_fixture_ids();
    assert!(ids.len() > 20, "expected many ids, got {}", ids.len());
    for (file, key, value) in &ids {
        let context = format!("{file}: {key}={value}");
        if is_masked(value) {
            // Cisco masked some ids in its examples; they must be refused cleanly.
            assert!(person_id(value).is_err(), "{context}");
            assert!(call_session_id(value).is_err(), "{context}");
            continue;
        }
        match key.as_str() {
            "callSessionId" => {
                let normalised = call_session_id(value).expect(&context);
                assert_eq!(
                    normalised.as_str(),
                    value.replace('-', "").to_lowercase(),
                    "{context}"
                );
                // The event form (a hydra id) normalises to the same value.
                let hydra = encode_hydra("us", "CALL_SESSION", value);
                assert_eq!(
                    call_session_id(&hydra).expect(&context),
                    normalised,
                    "{context}"
                );
            }
            "callId" => {
                let raw = call_id(value).expect(&context);
                assert_eq!(raw.as_str(), "callhalf-581329:0");
                let hydra = encode_hydra("us", "CALL", value);
                assert_eq!(call_id(&hydra).expect(&context), raw, "{context}");
            }
            "roomId" => {
                let hydra = decode_hydra(value).expect(&context);
                assert_eq!(hydra.kind, "ROOM", "{context}");
                assert!(Uuid::try_parse(&hydra.value).is_ok(), "{context}");
            }
            _ if file.starts_with("webhook_create") => {
                let hydra = decode_hydra(value).expect(&context);
                assert_eq!(hydra.kind, "WEBHOOK", "{context}");
                assert_eq!(
                    hydra.value, "96abc2aa-3dcc-11e5-a152-fe34819cdc9a",
                    "{context}"
                );
            }
            "locationId" if value == "US" => {
                // The list example's locationId is a region name, not an id: nothing to decode.
            }
            _ => {
                // Recording, owner, org, location, stream and actor ids are raw UUIDs or 32 hex.
                let person = person_id(value).expect(&context);
                let hydra = encode_hydra("us", "PEOPLE", &person.0.to_string());
                assert_eq!(person_id(&hydra).expect(&context), person, "{context}");
            }
        }
    }
}

#[test]
fn fixture_list_items_share_one_normalised_session_with_the_dashed_form() {
    let list =
        std::fs::read_to_string(fixtures_dir().join("converged_recordings_list.openapi.json"))
            .expect("list fixture");
    let json: serde_json::Value = serde_json::from_str(&list).expect("json");
    let sessions: Vec<CallSessionId> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            call_session_id(item["serviceData"]["callSessionId"].as_str().expect("str"))
                .expect("id")
        })
        .collect();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0], sessions[1]);
    let dashed = "7BA29675-3016-4BF0-AF19-66CF2854B000";
    assert_eq!(call_session_id(dashed).expect("dashed"), sessions[0]);
}

#[test]
fn hydra_decoding_accepts_padding_and_standard_alphabet() {
    let uri = "ciscospark://us/PEOPLE/ac7913cd-d943-4e34-81a8-f66ad1a5e376";
    let padded = base64::engine::general_purpose::STANDARD.encode(uri);
    assert!(padded.ends_with('='));
    let decoded = decode_hydra(&padded).expect("padded");
    assert_eq!(decoded.cluster, "us");
    assert_eq!(decoded.kind, "PEOPLE");
    assert_eq!(
        person_id(&padded).expect("person").0.to_string(),
        "ac7913cd-d943-4e34-81a8-f66ad1a5e376"
    );
}

#[test]
fn wrong_kinds_and_garbage_are_refused_with_a_reason() {
    let room = encode_hydra("us", "ROOM", "bbceb1ad-43f1-3b58-9147-f14bb0c4d154");
    assert!(
        matches!(person_id(&room), Err(IdError::Invalid { reason, .. }) if reason.contains("PEOPLE"))
    );
    assert!(matches!(call_id(&room), Err(IdError::Invalid { .. })));
    assert_eq!(call_id("  "), Err(IdError::Empty));
    assert!(decode_hydra("!!!").is_err());
    assert!(decode_hydra(&encode_hydra("us", "CALL", "")).is_err());
    assert!(call_id(&encode_hydra("us", "CALL", "callhalf-1:0 drop table")).is_err());
    assert!(normalize_call_session_id("7ba2967530164bf0af1966cf2854b00").is_err());
    assert!(normalize_call_session_id("7ba2967530164bf0af1966cf2854b00g").is_err());
}

proptest::proptest! {
    #[test]
    fn decoders_never_panic(input in ".{0,200}") {
        let _ = decode_hydra(&input);
        let _ = call_id(&input);
        let _ = call_session_id(&input);
        let _ = person_id(&input);
    }

    #[test]
    fn session_ids_normalise_from_every_form(bytes in proptest::array::uniform16(0u8..)) {
        let uuid = Uuid::from_bytes(bytes);
        let simple = uuid.simple().to_string();
        let dashed_upper = uuid.hyphenated().to_string().to_uppercase();
        let hydra = encode_hydra("us", "CALL_SESSION", &uuid.to_string());
        let a = call_session_id(&simple).expect("simple");
        proptest::prop_assert_eq!(&a, &call_session_id(&dashed_upper).expect("dashed"));
        proptest::prop_assert_eq!(&a, &call_session_id(&hydra).expect("hydra"));
        proptest::prop_assert_eq!(a.as_str(), simple.as_str());
    }
}
