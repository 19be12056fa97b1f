// figment::Jail fixes the closure type to `Result<(), figment::Error>`, a large error type.
#![allow(clippy::result_large_err)]

use figment::Jail;

use super::*;

fn load_in_jail(jail: &mut Jail, toml: Option<&str>) -> Result<Settings, ConfigError> {
    let file = toml.map(|text| {
        jail.create_file("capture.toml", text)
            .expect("write config");
        jail.directory().join("capture.toml")
    });
    Config::load(file.as_deref(), &Overrides::default()).and_then(Settings::from_config)
}

#[test]
fn no_configuration_at_all_gives_working_defaults() {
    Jail::expect_with(|jail| {
        let settings = load_in_jail(jail, None).expect("defaults are valid");
        assert_eq!(settings.listen, "0.0.0.0:8443".parse().expect("addr"));
        assert_eq!(settings.data_dir, PathBuf::from("capture-data"));
        assert!(
            matches!(settings.tls, TlsSource::Generated { ref dir, .. } if dir.ends_with("capture-data/tls"))
        );
        assert_eq!(settings.log_format, LogFormat::Text);
        Ok(())
    });
}

#[test]
fn layers_apply_in_order_file_env_flags() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "capture.toml",
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/a\"\n[log]\nformat = \"json\"\n",
        )?;
        jail.set_env("CAPTURE_DATA_DIR", "/srv/b");
        jail.set_env("CAPTURE_TLS__GENERATED_NAMES", "[\"capture.example.com\"]");
        jail.set_env("CAPTURE_CONFIG", "ignored-here.toml");
        let overrides = Overrides {
            listen: Some("127.0.0.1:9443".parse().expect("addr")),
            data_dir: None,
        };
        let config =
            Config::load(Some(&jail.directory().join("capture.toml")), &overrides).expect("load");
        let settings = Settings::from_config(config).expect("valid");
        assert_eq!(settings.listen.port(), 9443, "flag beats file");
        assert_eq!(settings.data_dir, PathBuf::from("/srv/b"), "env beats file");
        assert_eq!(settings.log_format, LogFormat::Json, "file beats default");
        assert_eq!(
            settings.tls,
            TlsSource::Generated {
                dir: PathBuf::from("/srv/b/tls"),
                names: vec!["capture.example.com".into()]
            }
        );
        Ok(())
    });
}

#[test]
fn an_unknown_key_is_named() {
    Jail::expect_with(|jail| {
        let error = load_in_jail(jail, Some("lissten = \"0.0.0.0:1\"\n")).expect_err("unknown key");
        let message = error.to_string();
        assert!(message.contains("lissten"), "{message}");
        assert!(message.contains("capture.toml"), "{message}");

        let error =
            load_in_jail(jail, Some("[tls]\ncert = \"a.pem\"\n")).expect_err("unknown nested key");
        assert!(error.to_string().contains("cert"), "{error}");
        Ok(())
    });
}

#[test]
fn an_unknown_environment_key_is_named() {
    Jail::expect_with(|jail| {
        jail.set_env("CAPTURE_LISTEN_PORT", "8443");
        let message = load_in_jail(jail, None)
            .expect_err("unknown env key")
            .to_string();
        assert!(message.contains("listen_port"), "{message}");
        Ok(())
    });
}

#[test]
fn a_wrong_type_is_named() {
    Jail::expect_with(|jail| {
        let message = load_in_jail(jail, Some("shutdown_grace_s = \"soon\"\n"))
            .expect_err("type")
            .to_string();
        assert!(message.contains("shutdown_grace_s"), "{message}");
        let message = load_in_jail(jail, Some("listen = \"localhost\"\n"))
            .expect_err("addr")
            .to_string();
        assert!(message.contains("listen"), "{message}");
        Ok(())
    });
}

#[test]
fn out_of_range_and_inconsistent_values_are_named() {
    Jail::expect_with(|jail| {
        let error = load_in_jail(jail, Some("shutdown_grace_s = 0\n")).expect_err("range");
        assert_eq!(
            error,
            ConfigError::Invalid {
                key: "shutdown_grace_s",
                value: "0".into(),
                reason: "must be between 1 and 300 seconds".into()
            }
        );
        let error =
            load_in_jail(jail, Some("[tls]\ncert_file = \"c.pem\"\n")).expect_err("half tls");
        assert!(
            matches!(
                error,
                ConfigError::Invalid {
                    key: "tls.key_file",
                    ..
                }
            ),
            "{error}"
        );
        let error = load_in_jail(jail, Some("[log]\nformat = \"xml\"\n")).expect_err("format");
        assert!(
            matches!(
                error,
                ConfigError::Invalid {
                    key: "log.format",
                    ..
                }
            ),
            "{error}"
        );
        let error =
            load_in_jail(jail, Some("[log]\nlevel = \"capture=loud\"\n")).expect_err("level");
        assert!(
            matches!(
                error,
                ConfigError::Invalid {
                    key: "log.level",
                    ..
                }
            ),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error() {
    let error = Config::load(
        Some(Path::new("/nonexistent/capture.toml")),
        &Overrides::default(),
    )
    .expect_err("missing file");
    assert!(
        error.to_string().contains("/nonexistent/capture.toml"),
        "{error}"
    );
}

#[test]
fn webex_credentials_take_three_forms() {
    Jail::expect_with(|jail| {
        let fixed = load_in_jail(jail, Some("[webex]\naccess_token = \"t\"\n")).expect("fixed");
        assert!(matches!(
            fixed.webex.map(|w| w.credentials),
            Some(Credentials::Static(SecretSource::Value(ref t))) if t == "t"
        ));
        jail.create_file("secret", "s3cret\n")?;
        let refresh = load_in_jail(
            jail,
            Some("[webex]\nclient_id = \"c\"\nclient_secret_file = \"secret\"\nrefresh_token = \"r\"\n"),
        )
        .expect("refresh");
        assert!(matches!(
            refresh.webex.map(|w| w.credentials),
            Some(Credentials::Refresh { ref client_id, client_secret: SecretSource::File(_), .. }) if client_id == "c"
        ));
        let app = load_in_jail(
            jail,
            Some("[webex]\nservice_app_id = \"a\"\nclient_id = \"c\"\nclient_secret = \"s\"\norg_id = \"o\"\naccess_token = \"admin\"\n"),
        )
        .expect("service app");
        assert!(matches!(
            app.webex.map(|w| w.credentials),
            Some(Credentials::ServiceApp { ref org_id, .. }) if org_id == "o"
        ));
        assert!(load_in_jail(jail, None).expect("none").webex.is_none());
        Ok(())
    });
}

#[test]
fn incomplete_webex_credentials_and_bad_adapter_values_are_named() {
    Jail::expect_with(|jail| {
        let cases = [
            (
                "[webex]\nrefresh_token = \"r\"\nclient_secret = \"s\"\n",
                "webex.client_id",
            ),
            (
                "[webex]\nrefresh_token = \"r\"\nclient_id = \"c\"\n",
                "webex.client_secret",
            ),
            (
                "[webex]\nservice_app_id = \"a\"\nclient_id = \"c\"\nclient_secret = \"s\"\naccess_token = \"t\"\n",
                "webex.org_id",
            ),
            (
                "[webex]\nclient_secret = \"s\"\nclient_secret_file = \"f\"\n",
                "webex.client_secret",
            ),
            (
                "[adapter]\npoll_interval_s = 0\n",
                "adapter.poll_interval_s",
            ),
            ("[adapter]\nconcurrency = 1000\n", "adapter.concurrency"),
            ("[adapter]\nmax_attempts = 0\n", "adapter.max_attempts"),
        ];
        for (toml, key) in cases {
            match load_in_jail(jail, Some(toml)) {
                Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key, "{toml}"),
                other => panic!("{toml}: expected an error naming {key}, got {other:?}"),
            }
        }
        let defaults = load_in_jail(jail, None).expect("defaults");
        assert_eq!(
            defaults.adapter.poll_interval,
            std::time::Duration::from_secs(60)
        );
        Ok(())
    });
}
