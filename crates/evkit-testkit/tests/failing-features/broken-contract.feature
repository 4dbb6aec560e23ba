# Must FAIL: proves the suite catches a broken contract (run by tests/features.rs, which
# asserts that this feature fails).
Feature: A broken contract fails the suite

  Scenario: A consumer relying on an optional field does not pass verification
    Given the catalog
    And a broker
    And service "needy" relies on "/due" of "platform.evkit.todo-created"
    Then contract verification passes for every service
