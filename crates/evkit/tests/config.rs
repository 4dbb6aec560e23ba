//! Configuration from a file, the environment and a Clowder app config; secrets redacted; the
//! properties that reach librdkafka, accepted by a real client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit::Config;
use evkit::config::{Mechanism, Protocol};
use rdkafka::consumer::BaseConsumer;

const CLOWDER: &str = r#"{
  "metricsPort": 9000,
  "kafka": {
    "brokers": [
      {"hostname": "kafka-1.example", "port": 9096, "authtype": "sasl",
       "cacert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
       "sasl": {"username": "svc-user", "password": "hunter2-secret",
                "securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512"}},
      {"hostname": "kafka-2.example", "port": null}
    ],
    "topics": [
      {"requestedName": "platform.evkit.todo-created", "name": "platform.evkit.todo-created-ephemeral-42"}
    ]
  }
}"#;

#[test]
fn clowder_config_sets_brokers_sasl_ca_and_topic_names() {
    let mut c = Config::default();
    c.apply_clowder(CLOWDER).unwrap();
    assert_eq!(
        c.bootstrap_servers,
        "kafka-1.example:9096,kafka-2.example:9092"
    );
    assert_eq!(c.security.protocol, Protocol::SaslSsl);
    let sasl = c.security.sasl.as_ref().unwrap();
    assert_eq!(
        (sasl.mechanism, sasl.username.as_str()),
        (Mechanism::ScramSha512, "svc-user")
    );
    assert_eq!(
        c.actual_topic("platform.evkit.todo-created"),
        "platform.evkit.todo-created-ephemeral-42"
    );
    assert_eq!(
        c.catalog_topic("platform.evkit.todo-created-ephemeral-42"),
        "platform.evkit.todo-created"
    );
    assert_eq!(c.metrics_listen.unwrap().port(), 9000);

    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "password in Debug: {debug}");

    let client = c.client_config().unwrap();
    assert_eq!(client.get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(client.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
    assert_eq!(client.get("sasl.username"), Some("svc-user"));
    assert_eq!(client.get("sasl.password"), Some("hunter2-secret"));
    assert!(
        client
            .get("ssl.ca.pem")
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
}

#[test]
fn environment_overrides_and_errors_name_the_variable() {
    let mut c = Config::default();
    let vars = [
        ("EVKIT_BOOTSTRAP_SERVERS", "b1:9092,b2:9092"),
        ("EVKIT_GROUP_ID", "todo-service"),
        ("EVKIT_SASL_MECHANISM", "scram-sha-256"),
        ("EVKIT_SASL_USERNAME", "u"),
        ("EVKIT_SASL_PASSWORD", "p4ss-w0rd"),
        ("EVKIT_SSL_CA_LOCATION", "/etc/ca.pem"),
        ("EVKIT_TOPICS", "a=b, c=d"),
        ("EVKIT_METRICS_LISTEN", "127.0.0.1:9100"),
        ("PATH", "/usr/bin"),
    ];
    c.apply_env(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .unwrap();
    assert_eq!(c.bootstrap_servers, "b1:9092,b2:9092");
    assert_eq!(c.group_id, "todo-service");
    assert_eq!(c.actual_topic("c"), "d");
    let client = c.client_config().unwrap();
    // SASL without TLS settings means SASL_PLAINTEXT; with a CA file librdkafka gets it.
    assert_eq!(client.get("security.protocol"), Some("sasl_plaintext"));
    assert_eq!(client.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(client.get("ssl.ca.location"), Some("/etc/ca.pem"));
    assert!(!format!("{c:?}").contains("p4ss-w0rd"));

    let mut c = Config::default();
    let err = c
        .apply_env([("EVKIT_SASL_MECHANISM".to_owned(), "KERBEROS".to_owned())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("EVKIT_SASL_MECHANISM"), "{err}");
    let err = c
        .apply_env([("EVKIT_SASL_USERNAME".to_owned(), "only-user".to_owned())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("go together"), "{err}");
    assert!(c.apply_clowder("{not json").is_err());
}

#[test]
fn a_yaml_file_keeps_defaults_for_what_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evkit.yaml");
    std::fs::write(
        &path,
        "bootstrap_servers: kafka:9092\nsecurity:\n  protocol: SASL_SSL\n  sasl:\n    mechanism: PLAIN\n    username: me\n    password: s3cret-value\nconsumer:\n  max_in_flight_per_partition: 8\n",
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    assert_eq!(c.consumer.max_in_flight_per_partition, 8);
    assert_eq!(c.consumer.retry.max_retries, 3);
    assert_eq!(c.group_id, "evkit");
    assert!(!format!("{c:?}").contains("s3cret-value"));

    std::fs::write(&path, "bootstrap_servers: [oops\n").unwrap();
    let err = Config::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("evkit.yaml"), "{err}");
}

#[test]
fn librdkafka_accepts_the_sasl_and_tls_settings() {
    // Creating a client validates every property; SCRAM and SSL need the `ssl` feature.
    for (mechanism, protocol) in [
        ("PLAIN", "SASL_PLAINTEXT"),
        ("SCRAM-SHA-256", "SASL_SSL"),
        ("SCRAM-SHA-512", "SASL_SSL"),
    ] {
        let mut c = Config::default();
        c.apply_env(
            [
                ("EVKIT_SASL_MECHANISM", mechanism),
                ("EVKIT_SECURITY_PROTOCOL", protocol),
                ("EVKIT_SASL_USERNAME", "u"),
                ("EVKIT_SASL_PASSWORD", "p"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let _consumer: BaseConsumer = c
            .client_config()
            .unwrap()
            .set("group.id", "g")
            .create()
            .unwrap_or_else(|e| panic!("{mechanism} over {protocol}: {e}"));
    }
    // SASL protocol without credentials is refused before librdkafka sees it.
    let mut c = Config::default();
    c.security.protocol = Protocol::SaslSsl;
    assert!(c.client_config().is_err());
}

/// OAUTHBEARER (OIDC client credentials) and GSSAPI read from a YAML file. The client secret
/// never shows in `Debug`. Each needs its build feature (`oidc`: librdkafka with libcurl,
/// `gssapi`: with Cyrus SASL); without it the refusal says so, with it librdkafka accepts the
/// properties.
#[test]
fn oauthbearer_and_gssapi_are_configured_and_redacted() {
    let (oidc, gssapi) = (cfg!(feature = "oidc"), cfg!(feature = "gssapi"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evkit.yaml");
    std::fs::write(
        &path,
        "security:\n  protocol: SASL_SSL\n  sasl:\n    mechanism: OAUTHBEARER\n    oauthbearer:\n      token_endpoint_url: https://sso.example.test/token\n      client_id: svc-evkit\n      client_secret: oidc-s3cret-value\n      scope: api.kafka\n",
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("oidc-s3cret-value"),
        "secret in Debug: {debug}"
    );
    match c.client_config() {
        Ok(client) => {
            assert!(oidc, "configured without the oidc feature");
            assert_eq!(client.get("sasl.mechanism"), Some("OAUTHBEARER"));
            assert_eq!(client.get("sasl.oauthbearer.method"), Some("oidc"));
            assert_eq!(client.get("sasl.oauthbearer.client.id"), Some("svc-evkit"));
            assert_eq!(client.get("sasl.oauthbearer.scope"), Some("api.kafka"));
            let _consumer: BaseConsumer = client
                .clone()
                .set("group.id", "g")
                .create()
                .unwrap_or_else(|e| panic!("OAUTHBEARER/OIDC: {e}"));
        }
        Err(e) => {
            assert!(!oidc, "{e}");
            assert!(e.to_string().contains("`oidc` feature"), "{e}");
            assert!(!e.to_string().contains("oidc-s3cret-value"), "{e}");
        }
    }

    std::fs::write(
        &path,
        "security:\n  protocol: SASL_PLAINTEXT\n  sasl:\n    mechanism: GSSAPI\n    kerberos:\n      principal: evkit/host@EXAMPLE.TEST\n      keytab: /etc/evkit.keytab\n",
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    match c.client_config() {
        Ok(client) => {
            assert!(gssapi, "configured without the gssapi feature");
            assert_eq!(client.get("sasl.kerberos.service.name"), Some("kafka"));
            assert_eq!(
                client.get("sasl.kerberos.principal"),
                Some("evkit/host@EXAMPLE.TEST")
            );
            let _consumer: BaseConsumer = client
                .clone()
                .set("group.id", "g")
                .create()
                .unwrap_or_else(|e| panic!("GSSAPI: {e}"));
        }
        Err(e) => {
            assert!(!gssapi, "{e}");
            assert!(e.to_string().contains("`gssapi` feature"), "{e}");
        }
    }
    // PLAIN without a password is refused before librdkafka sees it.
    std::fs::write(
        &path,
        "security:\n  sasl:\n    mechanism: PLAIN\n    username: me\n",
    )
    .unwrap();
    let err = Config::from_file(&path)
        .unwrap()
        .client_config()
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a username and a password"), "{err}");
}

/// librdkafka's refusal of a client repeats the value of the property it refused (seen with
/// `sasl.oauthbearer.client.secret`): evkit masks every secret of the configuration in it.
#[test]
fn client_creation_errors_mask_the_secrets() {
    let mut c = Config::default();
    c.apply_env(
        [
            ("EVKIT_SASL_USERNAME", "u"),
            ("EVKIT_SASL_PASSWORD", "hunter2-secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    let refused = rdkafka::error::KafkaError::ClientCreation(
        "Configuration property \"sasl.password\" not supported: hunter2-secret".to_owned(),
    );
    let err = c.client_error("creating the consumer")(refused).to_string();
    assert!(!err.contains("hunter2-secret"), "{err}");
    assert!(
        err.contains("creating the consumer") && err.contains("***"),
        "{err}"
    );
}

#[test]
fn the_group_instance_id_comes_from_the_pod_name_under_clowder_unless_set_or_turned_off() {
    let mut c = Config::default();
    assert_eq!(c.group_instance_id, None);
    c.apply_pod_name(Some("todo-service-7d9f8-abcde"));
    assert_eq!(
        c.group_instance_id.as_deref(),
        Some("todo-service-7d9f8-abcde")
    );

    // A configured id wins over the pod name.
    let mut c = Config {
        group_instance_id: Some("from-file".to_owned()),
        ..Config::default()
    };
    c.apply_pod_name(Some("pod-1"));
    assert_eq!(c.group_instance_id.as_deref(), Some("from-file"));
    let mut c = Config::default();
    c.apply_pod_name(Some("  "));
    assert_eq!(c.group_instance_id, None);

    // The variable wins over both, and `none` makes the member dynamic again.
    c.apply_pod_name(Some("pod-1"));
    c.apply_env([("EVKIT_GROUP_INSTANCE_ID".to_owned(), "worker-3".to_owned())])
        .unwrap();
    assert_eq!(c.group_instance_id.as_deref(), Some("worker-3"));
    c.apply_env([("EVKIT_GROUP_INSTANCE_ID".to_owned(), "NONE".to_owned())])
        .unwrap();
    assert_eq!(c.group_instance_id, None);

    let c: Config = serde_norway::from_str("group_instance_id: svc-0\n").unwrap();
    assert_eq!(c.group_instance_id.as_deref(), Some("svc-0"));
}

/// The librdkafka log lines a client emits while it is created.
#[derive(Default)]
struct Logs(std::sync::Mutex<Vec<String>>);

impl rdkafka::ClientContext for Logs {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.lock().unwrap().push(format!("{fac}: {log_message}"));
    }
}

impl rdkafka::producer::ProducerContext for Logs {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, (): ()) {}
}

fn producer_warnings(client: &rdkafka::ClientConfig) -> Vec<String> {
    // rust-rdkafka passes librdkafka the `log` crate's level, which is off in a test.
    let producer: rdkafka::producer::BaseProducer<Logs> = client
        .clone()
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Warning)
        .create_with_context(Logs::default())
        .unwrap();
    // Logs reach the context when the client is polled.
    producer.poll(std::time::Duration::from_millis(100));
    let logs = rdkafka::producer::Producer::context(&producer)
        .0
        .lock()
        .unwrap()
        .clone();
    logs.into_iter()
        .filter(|l| l.starts_with("CONFWARN"))
        .collect()
}

#[test]
fn consumer_and_producer_properties_reach_only_their_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evkit.yaml");
    std::fs::write(
        &path,
        "bootstrap_servers: 127.0.0.1:1\n\
         librdkafka:\n  socket.keepalive.enable: 'true'\n\
         librdkafka_consumer:\n  session.timeout.ms: '10000'\n\
         librdkafka_producer:\n  linger.ms: '20'\n",
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    let consumer = c.consumer_client_config().unwrap();
    let producer = c.producer_client_config().unwrap();
    assert_eq!(consumer.get("socket.keepalive.enable"), Some("true"));
    assert_eq!(producer.get("socket.keepalive.enable"), Some("true"));
    assert_eq!(consumer.get("session.timeout.ms"), Some("10000"));
    assert_eq!(producer.get("session.timeout.ms"), None);
    assert_eq!(producer.get("linger.ms"), Some("20"));
    assert_eq!(consumer.get("linger.ms"), None);
    // librdkafka takes each as its kind of client, and the producer has nothing to warn about.
    let _consumer: BaseConsumer = consumer.clone().set("group.id", "g").create().unwrap();
    assert_eq!(producer_warnings(&producer), Vec::<String>::new());
    // What the sections avoid: a consumer property for every client makes producers warn.
    let mut shared = c.clone();
    shared
        .librdkafka
        .insert("session.timeout.ms".to_owned(), "10000".to_owned());
    let warnings = producer_warnings(&shared.producer_client_config().unwrap());
    assert!(
        warnings.iter().any(|w| w.contains("session.timeout.ms")),
        "{warnings:?}"
    );
    // Secrets are refused in the scoped sections too, naming the section.
    for section in ["librdkafka_consumer", "librdkafka_producer"] {
        let mut bad = c.clone();
        let map = if section == "librdkafka_consumer" {
            &mut bad.librdkafka_consumer
        } else {
            &mut bad.librdkafka_producer
        };
        map.insert("sasl.password".to_owned(), "x".to_owned());
        let err = if section == "librdkafka_consumer" {
            bad.consumer_client_config().unwrap_err()
        } else {
            bad.producer_client_config().unwrap_err()
        };
        assert!(err.to_string().contains(section), "{err}");
    }
}
