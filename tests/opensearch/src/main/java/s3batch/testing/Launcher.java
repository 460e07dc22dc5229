package s3batch.testing;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * Starts a real single-node OpenSearch 2.19 in this JVM, for s3-batch's
 * integration tests. Listens on 127.0.0.1 only.
 *
 * Usage: Launcher DIR [HTTP_PORT [TRANSPORT_PORT]] [key=value ...]
 *   DIR            home of the node; data under DIR/data, logs under DIR/logs
 *   HTTP_PORT      default 9200 (0 = any free port; the real one is printed)
 *   TRANSPORT_PORT default 0 (any free loopback port)
 *   key=value      extra node settings, applied last
 *
 * Prints "opensearch ready on 127.0.0.1:PORT" once GET / answers, and closes
 * the node cleanly on SIGTERM/SIGINT.
 */
public final class Launcher {

    /** Node subclass that can be handed plugins from the classpath. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Launcher DIR [HTTP_PORT [TRANSPORT_PORT]] [key=value ...]");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        int i = 1;
        String httpPort = "9200";
        String transportPort = "0";
        if (i < args.length && !args[i].contains("=")) httpPort = args[i++];
        if (i < args.length && !args[i].contains("=")) transportPort = args[i++];

        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Files.createDirectories(home.resolve("config"));

        Settings.Builder b = Settings.builder()
            .put("cluster.name", "s3b-test")
            .put("node.name", "s3b-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("discovery.type", "single-node")
            // a test box may have little free disk: never go read-only for it
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true);
        for (; i < args.length; i++) {
            String a = args[i];
            int eq = a.indexOf('=');
            if (eq <= 0) {
                System.err.println("bad setting (want key=value): " + a);
                System.exit(2);
            }
            b.put(a.substring(0, eq), a.substring(eq + 1));
        }
        Settings settings = b.build();

        Environment env = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), home.resolve("config"), () -> "s3b-node");
        List<Class<? extends Plugin>> plugins = Arrays.asList(Netty4Plugin.class, CommonAnalysisPlugin.class);

        final Node node = new EmbeddedNode(env, plugins);
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("opensearch stopping");
            try {
                node.close();
                if (!node.awaitClose(30, TimeUnit.SECONDS)) {
                    System.out.println("opensearch close timed out");
                }
            } catch (Exception e) {
                e.printStackTrace();
            }
            System.out.println("opensearch stopped");
            System.out.flush();
            stopped.countDown();
        }, "s3b-shutdown"));

        long t0 = System.nanoTime();
        try {
            node.start();
        } catch (Exception e) {
            e.printStackTrace();
            System.err.println("opensearch failed to start");
            System.exit(1);
        }
        HttpServerTransport http = node.injector().getInstance(HttpServerTransport.class);
        int port = http.boundAddress().publishAddress().getPort();
        waitForHttp(port, 60_000);
        System.out.printf("opensearch ready on 127.0.0.1:%d (start %d ms)%n",
            port, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        System.out.flush();
        stopped.await();
    }

    private static void waitForHttp(int port, long timeoutMs) throws InterruptedException, IOException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        IOException last = null;
        while (System.currentTimeMillis() < deadline) {
            try {
                HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:" + port + "/").openConnection();
                c.setConnectTimeout(1000);
                c.setReadTimeout(5000);
                int code = c.getResponseCode();
                c.getInputStream().readAllBytes();
                c.disconnect();
                if (code == 200) return;
            } catch (IOException e) {
                last = e;
            }
            Thread.sleep(100);
        }
        throw last != null ? last : new IOException("HTTP did not answer 200 on port " + port);
    }
}
