Feature: Service contracts hold end to end on a real broker
  Every producing service's examples pass the catalog, and every consuming service accepts
  every valid message (with the fields it relies on) and dead-letters every invalid one.

  Background:
    Given the catalog
    And a broker

  Scenario: The todo API's examples reach the todo service's consumer
    When service "todo-api" publishes its example "a todo with every field"
    Then the consumer of "platform.evkit.todo-created" dispatches it to its handler with the decoded event

  Scenario: Every example of every producing service is handled exactly once
    When service "todo-api" publishes every example
    And service "todo-service" publishes every example
    And service "idm-domains" publishes every example
    Then every message produced is handled or dead-lettered exactly once

  Scenario: Producer and consumer verification passes for every contract
    Then contract verification passes for every service

  Scenario: A consumer that relies on an optional field is caught
    Given service "needy" relies on "/due" of "platform.evkit.todo-created"
    Then contract verification fails for service "needy"
