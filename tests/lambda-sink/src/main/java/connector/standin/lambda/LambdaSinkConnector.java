package connector.standin.lambda;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/**
 * A stand-in for io.confluent.connect.aws.lambda.AwsLambdaSinkConnector, for the tests and the
 * demo only: every task gets the connector's config and invokes the same function.
 */
public final class LambdaSinkConnector extends SinkConnector {
  static final String VERSION = "0.1.0-standin";

  private Map<String, String> props;

  @Override
  public String version() { return VERSION; }

  @Override
  public void start(Map<String, String> props) {
    new LambdaSinkConfig(props); // fail the connector early on a bad config
    this.props = Map.copyOf(props);
  }

  @Override
  public Class<? extends Task> taskClass() { return LambdaSinkTask.class; }

  @Override
  public List<Map<String, String>> taskConfigs(int maxTasks) {
    List<Map<String, String>> configs = new ArrayList<>(maxTasks);
    for (int i = 0; i < maxTasks; i++) {
      configs.add(props);
    }
    return configs;
  }

  @Override
  public void stop() {}

  @Override
  public ConfigDef config() { return LambdaSinkConfig.DEF; }
}
