Feature: Header rules
  Every topic requires x-rh-identity (base64 JSON with identity.org_id) and
  x-rh-insights-request-id.

  Background:
    Given the catalog
    And a broker

  Scenario: A message without an identity
    When a message that breaks "missing x-rh-identity" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "header:x-rh-identity"

  Scenario: An identity that is not base64
    When a message that breaks "x-rh-identity not base64" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "header:x-rh-identity"

  Scenario: The historical misspelling x-rh-insight-request-id does not count
    When a valid message with its request id header spelled "x-rh-insight-request-id" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "header:x-rh-insights-request-id"

  Scenario: Header names match whatever their case
    When a valid message with its request id header spelled "X-Rh-Insights-Request-Id" is published to "platform.evkit.todo-created"
    Then the consumer of "platform.evkit.todo-created" dispatches it to its handler with the decoded event
