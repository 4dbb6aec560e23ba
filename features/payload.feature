Feature: Payload rules
  The consumer validates every message before dispatch; what breaks the schema goes to the
  dead-letter topic with the failed JSON path, and never reaches the handler.

  Background:
    Given the catalog
    And a broker

  Scenario: A generated valid todo is dispatched with its decoded event
    When a generated valid message is published to "platform.evkit.todo-created"
    Then the consumer of "platform.evkit.todo-created" dispatches it to its handler with the decoded event

  Scenario: A missing required field
    When a message that breaks "missing required `title`" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "payload"

  Scenario: A title longer than maxLength
    When a message that breaks "maxLength@/title" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "payload/title"

  Scenario: An id of the wrong type (the Go service's float ids)
    When a message that breaks "type@/id" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "payload/id"

  Scenario: An unknown field on a closed topic
    When a message that breaks "additionalProperties" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "payload"

  Scenario: A key that differs from org_id
    When a message that breaks "key-pointer" is published to "platform.evkit.todo-created"
    Then it lands on the dead-letter topic with reason "validation" and the failed path "key/org_id"
