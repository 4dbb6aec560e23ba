Feature: Verify a service's real code
  A team registers its service's real routes (`evkit_testkit::steps::register_service`) and
  writes features against them: the handlers the service runs in production get examples,
  generated valid and generated invalid messages on a real broker.

  Scenario: A consumer that handles every valid todo passes
    Given the catalog
    And a broker
    And the service under test "todo-reader"
    Then the service under test passes consumer verification of "platform.evkit.todo-created" with 24 valid and 6 invalid messages

  Scenario: A consumer that panics when a todo has no description is caught
    Given the catalog
    And a broker
    And the service under test "needs-description"
    Then the service under test fails consumer verification of "platform.evkit.todo-created" with 24 valid and 6 invalid messages
