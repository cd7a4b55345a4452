package connector.standin.lambda;

import java.net.URI;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.types.Password;

/**
 * The settings of the Confluent AWS Lambda sink connector that shape what the function receives,
 * under the same names and defaults, plus one of our own: where the Lambda Invoke API is.
 * Properties this class does not know (confluent.topic.*, reporter.*, record.converter.class)
 * are accepted and ignored, so the seed's connector configs run unchanged but for the class.
 */
final class LambdaSinkConfig extends AbstractConfig {
  static final String FUNCTION_NAME = "aws.lambda.function.name";
  static final String REGION = "aws.lambda.region";
  static final String INVOCATION_TYPE = "aws.lambda.invocation.type";
  static final String BATCH_SIZE = "aws.lambda.batch.size";
  static final String BEHAVIOR_ON_ERROR = "behavior.on.error";
  static final String ACCESS_KEY_ID = "aws.access.key.id";
  static final String SECRET_ACCESS_KEY = "aws.secret.access.key";
  /** Not a Confluent setting: the Invoke API endpoint, e.g. the one `cargo lambda watch` serves. */
  static final String ENDPOINT_OVERRIDE = "aws.lambda.endpoint.override";
  /** Test knob: a record whose value starts with this fails the task, once (see POISON_SEEN_DIR). */
  static final String POISON_PREFIX = "standin.poison.prefix";
  /** Test knob: where the task notes the poison records it has failed on; seen again, one is skipped. */
  static final String POISON_SEEN_DIR = "standin.poison.seen.dir";
  /** Test knob: while this file exists, put() hands nothing over and the task stays RUNNING. */
  static final String STALL_FILE = "standin.stall.file";
  /** Test knob: with STALL_FILE, only these partitions stall; the others keep moving. */
  static final String STALL_PARTITIONS = "standin.stall.partitions";
  /** Test knob: how long each invocation takes to answer, as a slow function would (ms). */
  static final String PUT_DELAY_MS = "standin.put.delay.ms";

  enum OnError { FAIL, LOG, IGNORE }

  static final ConfigDef DEF = new ConfigDef()
      .define(FUNCTION_NAME, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
          Importance.HIGH, "The function to invoke (a name, or a name with :version or :alias).")
      .define(REGION, Type.STRING, null, Importance.MEDIUM,
          "The function's region; the SDK's default region chain when unset, else us-east-1.")
      .define(INVOCATION_TYPE, Type.STRING, "sync", ConfigDef.ValidString.in("sync", "async"),
          Importance.MEDIUM, "sync: RequestResponse, one batch at a time; async: Event, errors unseen.")
      .define(BATCH_SIZE, Type.INT, 20, ConfigDef.Range.atLeast(1), Importance.MEDIUM,
          "The most records combined into one invocation.")
      .define(BEHAVIOR_ON_ERROR, Type.STRING, "fail", ConfigDef.ValidString.in("fail", "log", "ignore"),
          Importance.MEDIUM, "fail stops the task on a function or invocation error; log and ignore go on.")
      .define(ACCESS_KEY_ID, Type.STRING, null, Importance.LOW,
          "Static credentials; the SDK's default provider chain when unset.")
      .define(SECRET_ACCESS_KEY, Type.PASSWORD, null, Importance.LOW, "The secret of aws.access.key.id.")
      .define(ENDPOINT_OVERRIDE, Type.STRING, null, Importance.LOW,
          "Stand-in only: the Lambda endpoint to call instead of the regional one.")
      .define(POISON_PREFIX, Type.STRING, null, Importance.LOW,
          "Stand-in only: a record whose value starts with this fails the task the first time it is"
              + " seen, with the rest of the value as the message; the next time it is skipped (as an"
              + " operator skips a poison record), so that poison records fail the task in turn.")
      .define(POISON_SEEN_DIR, Type.STRING, null, Importance.LOW,
          "Stand-in only: the directory where the poison records already failed on are noted"
              + " (needed with " + POISON_PREFIX + ": it outlives the task's restart).")
      .define(STALL_FILE, Type.STRING, null, Importance.LOW,
          "Stand-in only: while this file exists, every put() asks Kafka Connect to deliver its"
              + " records again later (RetriableException), so the task stays RUNNING and commits"
              + " nothing: the zombie task a status check cannot see. It outlives a task restart.")
      .define(STALL_PARTITIONS, Type.LIST, "", Importance.LOW,
          "Stand-in only: with " + STALL_FILE + ", only these partition numbers stall (their records"
              + " are handed back and the partitions paused, so nothing of them is committed) while"
              + " the others are delivered: one task's partitions standing still beside moving ones.")
      .define(PUT_DELAY_MS, Type.LONG, 0L, ConfigDef.Range.atLeast(0), Importance.LOW,
          "Stand-in only: each invocation answers this much later, as a slow function would.");

  LambdaSinkConfig(Map<String, String> props) {
    super(DEF, props);
    String endpoint = endpointOverride();
    if (endpoint != null) {
      try {
        URI uri = URI.create(endpoint);
        if (uri.getScheme() == null || uri.getHost() == null) {
          throw new IllegalArgumentException("no scheme or host");
        }
      } catch (IllegalArgumentException e) {
        throw new ConfigException(ENDPOINT_OVERRIDE, endpoint, "not an absolute URL: " + e.getMessage());
      }
    }
    if ((poisonPrefix() == null) != (poisonSeenDir() == null)) {
      throw new ConfigException(POISON_PREFIX + " and " + POISON_SEEN_DIR + " go together");
    }
    if ((getString(ACCESS_KEY_ID) == null) != (getPassword(SECRET_ACCESS_KEY) == null)) {
      throw new ConfigException(ACCESS_KEY_ID + " and " + SECRET_ACCESS_KEY + " go together");
    }
  }

  String functionName() { return getString(FUNCTION_NAME); }

  String region() { return getString(REGION); }

  boolean sync() { return "sync".equals(getString(INVOCATION_TYPE)); }

  int batchSize() { return getInt(BATCH_SIZE); }

  OnError onError() { return OnError.valueOf(getString(BEHAVIOR_ON_ERROR).toUpperCase(Locale.ROOT)); }

  String endpointOverride() { return getString(ENDPOINT_OVERRIDE); }

  String poisonPrefix() { return getString(POISON_PREFIX); }

  String poisonSeenDir() { return getString(POISON_SEEN_DIR); }

  String stallFile() { return getString(STALL_FILE); }

  /** The partition numbers that stall; empty: every partition. */
  java.util.Set<Integer> stallPartitions() {
    java.util.Set<Integer> out = new java.util.HashSet<>();
    for (String p : getList(STALL_PARTITIONS)) {
      out.add(Integer.parseInt(p.trim()));
    }
    return out;
  }

  long putDelayMs() { return getLong(PUT_DELAY_MS); }

  String accessKeyId() { return getString(ACCESS_KEY_ID); }

  String secretAccessKey() {
    Password secret = getPassword(SECRET_ACCESS_KEY);
    return secret == null ? null : secret.value();
  }
}
