package connector.standin.lambda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.exception.SdkServiceException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.lambda.LambdaClient;
import software.amazon.awssdk.services.lambda.LambdaClientBuilder;
import software.amazon.awssdk.services.lambda.model.InvocationType;
import software.amazon.awssdk.services.lambda.model.InvokeRequest;
import software.amazon.awssdk.services.lambda.model.InvokeResponse;

/**
 * Sends the records of each put() to the function in order, at most aws.lambda.batch.size per
 * invocation, as a JSON array of {"payload": {timestamp, topic, partition, offset, key, value}}.
 * A sync invocation returns only when the function has answered, so when put() returns every
 * record it was given has been handled and Connect may commit their offsets; when put() throws,
 * nothing of this call is committed and Connect delivers it again after a restart.
 */
public final class LambdaSinkTask extends SinkTask {
  private static final Logger log = LoggerFactory.getLogger(LambdaSinkTask.class);
  /** The Confluent connector's fixed socket timeout; the function's timeout must stay below it. */
  private static final Duration SOCKET_TIMEOUT = Duration.ofSeconds(50);
  private static final ObjectMapper JSON = new ObjectMapper();

  private LambdaSinkConfig config;
  private LambdaClient lambda;
  private final JsonConverter structured = new JsonConverter();

  @Override
  public String version() { return LambdaSinkConnector.VERSION; }

  @Override
  public void start(Map<String, String> props) {
    config = new LambdaSinkConfig(props);
    structured.configure(Map.of("schemas.enable", "false", "converter.type", "value"));
    LambdaClientBuilder builder = LambdaClient.builder()
        .httpClient(UrlConnectionHttpClient.builder()
            .connectionTimeout(Duration.ofSeconds(5))
            .socketTimeout(SOCKET_TIMEOUT)
            .build());
    builder.region(config.region() != null ? Region.of(config.region()) : defaultRegion());
    if (config.accessKeyId() != null) {
      builder.credentialsProvider(StaticCredentialsProvider.create(
          AwsBasicCredentials.create(config.accessKeyId(), config.secretAccessKey())));
    } else {
      builder.credentialsProvider(DefaultCredentialsProvider.builder().build());
    }
    if (config.endpointOverride() != null) {
      builder.endpointOverride(URI.create(config.endpointOverride()));
    }
    lambda = builder.build();
    log.info("stand-in Lambda sink task started: function {}, {} invocation, batches of at most {}, on error {}",
        config.functionName(), config.sync() ? "sync" : "async", config.batchSize(), config.onError());
  }

  private static Region defaultRegion() {
    String env = System.getenv("AWS_REGION");
    if (env == null || env.isBlank()) {
      env = System.getenv("AWS_DEFAULT_REGION");
    }
    return Region.of(env == null || env.isBlank() ? "us-east-1" : env);
  }

  /** The partitions this task paused for the stall knob, with the offset each stands at. */
  private final Map<org.apache.kafka.common.TopicPartition, Long> stalled = new java.util.HashMap<>();

  /** A stalled partition commits where it stands, not past the records it handed back. */
  @Override
  public Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> preCommit(
      Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> current) {
    Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> out =
        new java.util.HashMap<>(current);
    stalled.forEach((tp, at) -> out.put(tp, new org.apache.kafka.clients.consumer.OffsetAndMetadata(at)));
    return out;
  }

  /**
   * Test knob (STALL_FILE with STALL_PARTITIONS): the records of those partitions are handed
   * back (their offsets rewound, the partitions paused), so nothing of them is committed while
   * the other partitions' records are delivered; once the file is gone they resume.
   */
  private Collection<SinkRecord> withoutStalledPartitions(Collection<SinkRecord> records) {
    boolean stalling = Files.exists(Path.of(config.stallFile()));
    if (!stalling) {
      if (!stalled.isEmpty()) {
        context.resume(stalled.keySet().toArray(new org.apache.kafka.common.TopicPartition[0]));
        stalled.clear();
      }
      return records;
    }
    java.util.Set<Integer> partitions = config.stallPartitions();
    Map<org.apache.kafka.common.TopicPartition, Long> rewind = new java.util.HashMap<>();
    List<SinkRecord> kept = new ArrayList<>();
    for (SinkRecord record : records) {
      if (partitions.contains(record.kafkaPartition())) {
        rewind.merge(new org.apache.kafka.common.TopicPartition(record.topic(), record.kafkaPartition()),
            record.kafkaOffset(), Math::min);
      } else {
        kept.add(record);
      }
    }
    if (!rewind.isEmpty()) {
      context.offset(rewind);
      context.pause(rewind.keySet().toArray(new org.apache.kafka.common.TopicPartition[0]));
      rewind.forEach((tp, at) -> stalled.merge(tp, at, Math::min));
    }
    return kept;
  }

  @Override
  public void put(Collection<SinkRecord> records) {
    if (config.stallFile() != null && !config.stallPartitions().isEmpty()) {
      records = withoutStalledPartitions(records);
    } else if (config.stallFile() != null && Files.exists(Path.of(config.stallFile())) && !records.isEmpty()) {
      // Connect pauses the partitions and delivers the same records again after the timeout:
      // the task stays RUNNING, nothing is committed.
      context.timeout(500);
      throw new RetriableException("stalled by the test knob " + LambdaSinkConfig.STALL_FILE);
    }
    List<SinkRecord> batch = new ArrayList<>(config.batchSize());
    for (SinkRecord record : records) {
      if (poisoned(record)) {
        continue;
      }
      batch.add(record);
      if (batch.size() == config.batchSize()) {
        invoke(batch);
        batch.clear();
      }
    }
    if (!batch.isEmpty()) {
      invoke(batch);
    }
  }

  /**
   * Test knob: whether to skip a poison record seen before; one not seen before is noted and
   * fails the task (put() throws, so nothing of this call is committed).
   */
  private boolean poisoned(SinkRecord record) {
    String prefix = config.poisonPrefix();
    if (prefix == null || !(record.value() instanceof String value) || !value.startsWith(prefix)) {
      return false;
    }
    Path seen = Path.of(config.poisonSeenDir(), record.topic() + "-" + record.kafkaPartition() + "-" + record.kafkaOffset());
    if (Files.exists(seen)) {
      log.info("skipping the poison record {} failed on before", describe(record));
      return true;
    }
    try {
      Files.createDirectories(seen.getParent());
      Files.createFile(seen);
    } catch (IOException e) {
      throw new ConnectException("cannot note the poison record in " + seen, e);
    }
    throw new ConnectException("Cannot process the record " + describe(record) + ": "
        + value.substring(prefix.length()));
  }

  private void invoke(List<SinkRecord> batch) {
    if (config.putDelayMs() > 0) {
      try {
        Thread.sleep(config.putDelayMs());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new ConnectException("interrupted while answering slowly", e);
      }
    }
    String first = describe(batch.get(0));
    SdkBytes payload = SdkBytes.fromUtf8String(payloadOf(batch).toString());
    InvokeRequest request = InvokeRequest.builder()
        .functionName(config.functionName())
        .invocationType(config.sync() ? InvocationType.REQUEST_RESPONSE : InvocationType.EVENT)
        .payload(payload)
        .build();
    InvokeResponse response;
    try {
      response = lambda.invoke(request);
    } catch (SdkException e) {
      String body = e instanceof SdkServiceException service && service.statusCode() >= 500 ? rawBody(service) : "";
      if (body.contains("\"errorType\"")) {
        // Real Lambda reports a function error as 200 + X-Amz-Function-Error; the local Invoke
        // API of cargo lambda watch answers 500 with the function's error document instead. Either
        // way the function ran and failed: no SDK exception below it in the trace, as with Lambda.
        functionError("Unhandled, HTTP " + ((SdkServiceException) e).statusCode() + " from the Invoke API",
            batch.size(), first, body);
      } else {
        onError(String.format("Invoking %s failed on %d records from %s: %s",
            config.functionName(), batch.size(), first, e.getMessage()), e);
      }
      return;
    }
    if (response.functionError() != null) {
      functionError(response.functionError(), batch.size(), first,
          response.payload() == null ? "" : response.payload().asUtf8String());
      return;
    }
    log.debug("{} answered {} records from {}", config.functionName(), batch.size(), first);
  }

  private void functionError(String kind, int records, String first, String document) {
    onError(String.format("Lambda function error (X-Amz-Function-Error: %s) for %s on %d records from %s: %s",
        kind, config.functionName(), records, first, document), null);
  }

  private void onError(String message, Throwable cause) {
    switch (config.onError()) {
      case FAIL -> throw new ConnectException(message, cause);
      case LOG -> log.error("{} (behavior.on.error=log: going on)", message);
      case IGNORE -> log.debug("{} (behavior.on.error=ignore)", message);
    }
  }

  private static String rawBody(SdkServiceException e) {
    if (e instanceof software.amazon.awssdk.awscore.exception.AwsServiceException aws
        && aws.awsErrorDetails() != null && aws.awsErrorDetails().rawResponse() != null) {
      return aws.awsErrorDetails().rawResponse().asUtf8String();
    }
    return "";
  }

  private static String describe(SinkRecord record) {
    return record.topic() + "-" + record.kafkaPartition() + "@" + record.kafkaOffset();
  }

  private ArrayNode payloadOf(List<SinkRecord> batch) {
    ArrayNode array = JsonNodeFactory.instance.arrayNode(batch.size());
    for (SinkRecord record : batch) {
      ObjectNode payload = JsonNodeFactory.instance.objectNode();
      if (record.timestamp() == null) {
        payload.putNull("timestamp");
      } else {
        payload.put("timestamp", record.timestamp());
      }
      payload.put("topic", record.topic());
      payload.put("partition", record.kafkaPartition());
      payload.put("offset", record.kafkaOffset());
      payload.set("key", toJson(record.topic(), record.keySchema(), record.key()));
      payload.set("value", toJson(record.topic(), record.valueSchema(), record.value()));
      array.addObject().set("payload", payload);
    }
    return array;
  }

  /**
   * As the Confluent JsonKeyValueConverter: strings (StringConverter, the seed's setting) stay
   * JSON strings holding the record's text, null stays null (a tombstone), bytes become base64,
   * and schema'd values become JSON values.
   */
  private JsonNode toJson(String topic, Schema schema, Object value) {
    if (value == null) {
      return JsonNodeFactory.instance.nullNode();
    }
    if (value instanceof String text) {
      return JsonNodeFactory.instance.textNode(text);
    }
    if (value instanceof byte[] bytes) {
      return JsonNodeFactory.instance.textNode(Base64.getEncoder().encodeToString(bytes));
    }
    byte[] json = structured.fromConnectData(topic, schema, value);
    try {
      return JSON.readTree(new String(json, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new ConnectException("could not render a " + value.getClass().getName() + " value as JSON", e);
    }
  }

  @Override
  public void stop() {
    if (lambda != null) {
      lambda.close();
    }
  }
}
