Feature: A broken service must fail verification
  The handler panics on valid todos without a description; this feature claims it passes, so
  the suite must report it as failed.

  Scenario: The broken service is claimed to pass
    Given the catalog
    And a broker
    And the service under test "needs-description"
    Then the service under test passes consumer verification of "platform.evkit.todo-created" with 24 valid and 6 invalid messages
