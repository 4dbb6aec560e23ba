Feature: Partition ordering by key
  Messages with the same key land on the same partition and are handled in the order they were
  produced, while partitions are handled concurrently.

  Scenario: Forty generated todos over three partitions
    Given the catalog
    And a broker
    And topic "platform.evkit.todo-created" with 3 partitions
    When 40 generated valid messages for 5 tenants are published to "platform.evkit.todo-created"
    Then every message produced is handled or dead-lettered exactly once
    And messages with the same key are handled in the order they were produced
