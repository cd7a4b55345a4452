package connector.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Writer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.kafka.connect.cli.ConnectDistributed;

/**
 * The Connect image's entrypoint: turns the container's environment into worker properties and
 * runs Kafka Connect in distributed mode in this JVM.
 *
 * <ul>
 *   <li>{@code CONNECT_*} variables become worker properties as the seed's image named them:
 *       strip the prefix, lower-case, {@code ___} → {@code -}, {@code __} → {@code _}, {@code _}
 *       → {@code .} ({@code CONNECT_GROUP_ID} → {@code group.id}).
 *   <li>{@code CONNECT_REST_PORT} (8083) gives {@code listeners} and {@code rest.advertised.port};
 *       the advertised host is {@code CONNECT_REST_ADVERTISED_HOST_NAME}, else the task's IPv4
 *       address from the ECS task metadata endpoint v4 ({@code ECS_CONTAINER_METADATA_URI_V4}).
 *   <li>{@code KAFKA_SECURITY_PROTOCOL} (PLAINTEXT or SSL) and the optional
 *       {@code KAFKA_SSL_TRUSTSTORE_LOCATION}, {@code _PASSWORD}, {@code _TYPE} apply to the
 *       worker and to its producers, consumers and admin clients (a {@code CONNECT_*} setting of
 *       the same property wins).
 *   <li>{@code REST_AUTH_USERNAME} and {@code REST_AUTH_PASSWORD} (ECS injects them from Secrets
 *       Manager) turn on the REST API's basic authentication ({@code
 *       BasicAuthSecurityRestExtension}); they are read here, never made worker properties, and
 *       land only in a password file of this user's. Without them the worker does not start,
 *       unless {@code REST_AUTH=none} says that an open REST API is meant.
 * </ul>
 *
 * The container health check is {@code healthcheck.sh} (curl), not this class: a second JVM
 * every 30 s would cost a 1-vCPU task more than the check is worth.
 */
public final class Entrypoint {
    private static final Map<String, String> REQUIRED = new TreeMap<>(Map.of(
            "bootstrap.servers", "the Kafka brokers",
            "group.id", "the Connect cluster's group",
            "config.storage.topic", "the topic of connector configs",
            "offset.storage.topic", "the topic of sink and source offsets",
            "status.storage.topic", "the topic of connector and task states",
            "key.converter", "the worker's key converter class",
            "value.converter", "the worker's value converter class"));
    private static final List<String> CLIENTS = List.of("", "producer.", "consumer.", "admin.");
    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    static final String BASIC_AUTH_EXTENSION =
            "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension";
    private static final String LOGIN_MODULE =
            "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule";

    private Entrypoint() {}

    /** A variable that is missing or wrong; the message names it. */
    static final class ConfigException extends Exception {
        ConfigException(String message) {
            super(message);
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        Map<String, String> props;
        try {
            props = workerProperties(env, Entrypoint::fetch);
        } catch (ConfigException e) {
            System.err.println("kafka-connect entrypoint: " + e.getMessage());
            System.exit(2);
            return;
        }
        // Holds the truststore password: readable by this user only (createTempFile's default).
        Path file = privateFile("connect-worker", ".properties");
        try (Writer out = Files.newBufferedWriter(file)) {
            for (Map.Entry<String, String> e : props.entrySet()) {
                out.write(escape(e.getKey()) + "=" + escape(e.getValue()) + "\n");
            }
        }
        boolean basicAuth = props.getOrDefault("rest.extension.classes", "").contains(BASIC_AUTH_EXTENSION);
        if (basicAuth) {
            System.setProperty("java.security.auth.login.config", loginFiles(env).toString());
        }
        System.err.println("kafka-connect entrypoint: worker properties in " + file + ", advertised as "
                + props.get("rest.advertised.host.name") + ":" + props.get("rest.advertised.port")
                + ", REST authentication " + (basicAuth ? "basic" : "off (REST_AUTH=none)"));
        ConnectDistributed.main(new String[] {file.toString()});
    }

    /** A new file that only this user can read, removed when the JVM exits. */
    private static Path privateFile(String prefix, String suffix) throws IOException {
        Path file = Files.createTempFile(prefix, suffix);
        file.toFile().deleteOnExit();
        return file;
    }

    /**
     * The JAAS configuration the extension reads ({@code KafkaConnect}), and the password file it
     * names, holding the one user of REST_AUTH_USERNAME / REST_AUTH_PASSWORD.
     */
    static Path loginFiles(Map<String, String> env) throws IOException {
        Properties users = new Properties();
        users.setProperty(env.get("REST_AUTH_USERNAME"), env.get("REST_AUTH_PASSWORD"));
        Path passwords = privateFile("connect-rest-users", ".properties");
        try (Writer out = Files.newBufferedWriter(passwords)) {
            users.store(out, null);
        }
        Path jaas = privateFile("connect-rest", ".jaas");
        String path = passwords.toString().replace("\\", "\\\\").replace("\"", "\\\"");
        Files.writeString(jaas, "KafkaConnect {\n  " + LOGIN_MODULE + " required\n  file=\"" + path + "\";\n};\n");
        return jaas;
    }

    /** The worker properties of this environment; {@code get} reads a URL (the metadata endpoint). */
    static Map<String, String> workerProperties(Map<String, String> env, Function<String, String> get)
            throws ConfigException {
        List<String> problems = new ArrayList<>();
        Map<String, String> props = new TreeMap<>();
        for (Map.Entry<String, String> e : env.entrySet()) {
            String name = e.getKey();
            if (name.startsWith("CONNECT_") && !name.equals("CONNECT_REST_PORT")) {
                props.put(property(name.substring("CONNECT_".length())), e.getValue());
            }
        }
        for (Map.Entry<String, String> r : REQUIRED.entrySet()) {
            if (props.getOrDefault(r.getKey(), "").isBlank()) {
                problems.add(variable(r.getKey()) + " is not set (" + r.getValue() + ")");
            }
        }
        String port = env.getOrDefault("CONNECT_REST_PORT", "8083");
        if (!port.matches("[0-9]{1,5}") || Integer.parseInt(port) < 1 || Integer.parseInt(port) > 65535) {
            problems.add("CONNECT_REST_PORT must be a TCP port from 1 to 65535, not '" + port + "'");
        }
        props.putIfAbsent("listeners", "http://0.0.0.0:" + port);
        props.putIfAbsent("rest.advertised.port", port);
        security(env, props, problems);
        restAuth(env, props, problems, port);
        if (props.getOrDefault("rest.advertised.host.name", "").isBlank()) {
            String metadata = env.get("ECS_CONTAINER_METADATA_URI_V4");
            if (metadata == null || metadata.isBlank()) {
                problems.add("CONNECT_REST_ADVERTISED_HOST_NAME is not set and ECS_CONTAINER_METADATA_URI_V4 is"
                        + " not either: set the address other workers and the monitor reach this worker at,"
                        + " or run on ECS");
            } else {
                try {
                    props.put("rest.advertised.host.name", taskAddress(metadata, get));
                } catch (ConfigException e) {
                    problems.add(e.getMessage());
                }
            }
        }
        if (!problems.isEmpty()) {
            throw new ConfigException(String.join("; ", problems));
        }
        return props;
    }

    /** {@code GROUP_ID} → {@code group.id}, {@code A___B} → {@code a-b}, {@code A__B} → {@code a_b}. */
    static String property(String suffix) {
        return suffix.toLowerCase(Locale.ROOT)
                .replace("___", "\u0000")
                .replace("__", "\u0001")
                .replace('_', '.')
                .replace('\u0001', '_')
                .replace('\u0000', '-');
    }

    private static String variable(String property) {
        return "CONNECT_" + property.replace('.', '_').toUpperCase(Locale.ROOT);
    }

    private static void security(Map<String, String> env, Map<String, String> props, List<String> problems) {
        String protocol = env.getOrDefault("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").trim().toUpperCase(Locale.ROOT);
        if (!protocol.equals("PLAINTEXT") && !protocol.equals("SSL")) {
            problems.add("KAFKA_SECURITY_PROTOCOL must be PLAINTEXT or SSL, not '" + protocol + "'");
            return;
        }
        Map<String, String> tls = new TreeMap<>();
        tls.put("security.protocol", protocol);
        if (protocol.equals("SSL")) {
            for (String part : List.of("LOCATION", "PASSWORD", "TYPE")) {
                String value = env.get("KAFKA_SSL_TRUSTSTORE_" + part);
                if (value != null && !value.isBlank()) {
                    tls.put("ssl.truststore." + part.toLowerCase(Locale.ROOT), value);
                }
            }
            String store = tls.get("ssl.truststore.location");
            if (store != null && !Files.isReadable(Path.of(store))) {
                problems.add("KAFKA_SSL_TRUSTSTORE_LOCATION names " + store + ", which cannot be read");
            }
        }
        for (String client : CLIENTS) {
            tls.forEach((k, v) -> props.putIfAbsent(client + k, v));
        }
    }

    /**
     * Basic authentication on the REST API unless {@code REST_AUTH=none}: both credentials must be
     * given (an empty password file would let every request through), and the extension is added
     * to any {@code CONNECT_REST_EXTENSION_CLASSES}.
     */
    private static void restAuth(Map<String, String> env, Map<String, String> props, List<String> problems,
            String port) {
        String mode = env.getOrDefault("REST_AUTH", "basic").trim().toLowerCase(Locale.ROOT);
        String user = env.getOrDefault("REST_AUTH_USERNAME", "");
        String password = env.getOrDefault("REST_AUTH_PASSWORD", "");
        if (mode.equals("none")) {
            if (!user.isEmpty() || !password.isEmpty()) {
                problems.add("REST_AUTH=none, yet REST_AUTH_USERNAME or REST_AUTH_PASSWORD is set: choose one");
            }
            return;
        }
        if (!mode.equals("basic")) {
            problems.add("REST_AUTH must be basic or none, not '" + mode + "'");
            return;
        }
        if (user.isBlank() || password.isEmpty()) {
            problems.add("REST_AUTH_USERNAME and REST_AUTH_PASSWORD must both be set (the task definition takes"
                    + " them from Secrets Manager): without them anyone who reaches port " + port
                    + " could change connectors; REST_AUTH=none runs the REST API open on purpose");
            return;
        }
        if (user.contains(":") || user.chars().anyMatch(Character::isISOControl)
                || password.chars().anyMatch(Character::isISOControl)) {
            problems.add("REST_AUTH_USERNAME must not contain ':', and neither credential a control character"
                    + " (basic authentication cannot carry them)");
            return;
        }
        String extensions = props.getOrDefault("rest.extension.classes", "").trim();
        if (!List.of(extensions.split("\\s*,\\s*")).contains(BASIC_AUTH_EXTENSION)) {
            props.put("rest.extension.classes",
                    extensions.isEmpty() ? BASIC_AUTH_EXTENSION : extensions + "," + BASIC_AUTH_EXTENSION);
        }
    }

    /** The task's IPv4 address from the container metadata document (v4). */
    static String taskAddress(String metadataUri, Function<String, String> get) throws ConfigException {
        String body = get.apply(metadataUri);
        if (body == null) {
            throw new ConfigException("the ECS task metadata endpoint " + metadataUri + " did not answer");
        }
        try {
            JsonNode networks = new ObjectMapper().readTree(body).path("Networks");
            for (JsonNode network : networks) {
                JsonNode address = network.path("IPv4Addresses").path(0);
                if (address.isTextual() && !address.asText().isBlank()) {
                    return address.asText();
                }
            }
        } catch (IOException e) {
            throw new ConfigException("the ECS task metadata at " + metadataUri + " is not JSON: " + e.getMessage());
        }
        throw new ConfigException("the ECS task metadata at " + metadataUri + " has no Networks[].IPv4Addresses");
    }

    /** GET with a timeout and three tries (the endpoint can lag the container's start); null if none answered. */
    private static String fetch(String url) {
        HttpClient client = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
        for (int attempt = 1; attempt <= 3; attempt++) {
            try {
                HttpResponse<String> r = client.send(
                        HttpRequest.newBuilder(URI.create(url)).timeout(TIMEOUT).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return r.body();
                }
            } catch (IOException e) {
                System.err.println("kafka-connect entrypoint: " + url + ": " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
            try {
                Thread.sleep(1000L * attempt);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }

    private static String escape(String s) {
        StringBuilder out = new StringBuilder();
        for (char c : s.toCharArray()) {
            switch (c) {
                case '\\', '=', ':', '#', '!' -> out.append('\\').append(c);
                case '\n' -> out.append("\\n");
                default -> out.append(c);
            }
        }
        return out.toString();
    }
}
