@fractional @fractional-v3
Feature: Evaluator fractional operator, flagd-core 2.x bucketing (CBOR-encoded bucket keys)

  # The testbed snapshot vendored in testbed/ (3.9.0) predates flagd's CBOR bucketing, which
  # openfeature-flagd-core 2.x implements; flagd-testbed 3.10 added these @fractional-v3
  # examples for the same testkit flags. Kept here, outside the vendored copy.

  Background:
    Given an evaluator

  Scenario Outline: Fractional operator
    Given a String-flag with key "fractional-flag" and a fallback value "fallback"
    And a context containing a nested property with outer key "user" and inner key "name", with value "<name>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples: v3
      | name  | value    |
      | jack  | diamonds |
      | queen | diamonds |
      | ten   | clubs    |
      | nine  | clubs    |
      | 3     | spades   |

  Scenario Outline: Fractional operator shorthand
    Given a String-flag with key "fractional-flag-shorthand" and a fallback value "fallback"
    And a context containing a targeting key with value "<targeting_key>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "SPLIT"

    Examples: v3
      | targeting_key    | value |
      | jon@company.com  | tails |
      | jane@company.com | tails |

  Scenario Outline: Fractional operator with shared seed
    Given a String-flag with key "fractional-flag-A-shared-seed" and a fallback value "fallback"
    And a context containing a nested property with outer key "user" and inner key "name", with value "<name>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples: v3
      | name  | value    |
      | seven | hearts   |
      | eight | hearts   |
      | nine  | diamonds |
      | two   | diamonds |

  Scenario Outline: Second fractional operator with shared seed
    Given a String-flag with key "fractional-flag-B-shared-seed" and a fallback value "fallback"
    And a context containing a nested property with outer key "user" and inner key "name", with value "<name>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples: v3
      | name  | value           |
      | seven | ace-of-hearts   |
      | eight | ace-of-hearts   |
      | nine  | ace-of-diamonds |
      | two   | ace-of-diamonds |

  Scenario: Fractional operator with single entry always resolves to the only variant
    Given a String-flag with key "fractional-single-entry-flag" and a fallback value "fallback"
    And a context containing a targeting key with value "some-targeting-key"
    When the flag was evaluated with details
    Then the resolved details value should be "single"
    And the reason should be "SPLIT"
