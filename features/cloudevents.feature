Feature: CloudEvents envelopes
  Binary mode carries the attributes in ce_* headers and the data as the payload; structured mode
  carries the whole event as JSON and dispatches its data on the dataschema attribute.

  Background:
    Given the catalog
    And a broker

  Scenario: Binary mode: a registered domain
    When service "idm-domains" publishes its example "a domain with two servers"
    Then the consumer of "platform.evkit.domain-registered" dispatches it to its handler with the decoded event

  Scenario: Binary mode: generated events
    When 5 generated valid messages are published to "platform.evkit.domain-registered"
    Then every message produced is handled or dead-lettered exactly once

  Scenario: Structured mode: a console notification
    When service "idm-domains" publishes its example "a degraded domain"
    Then the consumer of "platform.notifications.ingress" dispatches it to its handler with the decoded event

  Scenario: Structured mode: data that breaks its dataschema
    When a message that breaks "missing required" is published to "platform.notifications.ingress"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "payload/data"
