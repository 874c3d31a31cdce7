import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.errors.GroupIdNotFoundException;

/**
 * Readiness probe used by deploy/local/infra.sh after starting the broker.
 *
 * <p>Usage: {@code KafkaProbe <bootstrap servers> <timeout seconds> [<scram user> <password>]}.
 * Retries until the broker
 * answers a cluster description (ApiVersions + DescribeCluster), lists topics, and its group
 * coordinator is available (which also creates {@code __consumer_offsets} up front, so the first
 * consumer group of a test does not pay for it). Given a user, it then sets that user's
 * SCRAM-SHA-512 password (an upsert: the same on every start), for the SASL listener. Exits 0
 * when all succeeded, 1 on timeout.
 */
public final class KafkaProbe {
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2 && args.length != 4) {
            System.err.println("usage: KafkaProbe <bootstrap servers> <timeout seconds> [<scram user> <password>]");
            System.exit(2);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                String ready = probe(args[0]);
                if (args.length == 4) {
                    addScramUser(args[0], args[2], args[3]);
                    ready += "; SASL user " + args[2];
                }
                System.out.println(ready);
                System.exit(0);
            } catch (Exception e) {
                last = e;
                Thread.sleep(250);
            }
        }
        System.err.println("Kafka at " + args[0] + " did not answer: " + last);
        System.exit(1);
    }

    private static void addScramUser(String bootstrap, String user, String password)
            throws Exception {
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192);
            admin.alterUserScramCredentials(
                            List.of(new UserScramCredentialUpsertion(user, info, password)))
                    .all().get(20, TimeUnit.SECONDS);
        }
    }

    private static Properties adminProps(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "helpdesk-infra-probe");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10000);
        return props;
    }

    private static String probe(String bootstrap) throws Exception {
        Properties props = adminProps(bootstrap);
        try (Admin admin = Admin.create(props)) {
            DescribeClusterResult cluster = admin.describeCluster();
            String clusterId = cluster.clusterId().get(10, TimeUnit.SECONDS);
            Collection<Node> nodes = cluster.nodes().get(10, TimeUnit.SECONDS);
            int topics = admin.listTopics().names().get(10, TimeUnit.SECONDS).size();
            // FindCoordinator + OffsetFetch: answer only once __consumer_offsets exists and is
            // loaded. "No such group" is an answer from a working coordinator, so it counts.
            try {
                admin.listConsumerGroupOffsets("helpdesk-infra-probe")
                        .partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof GroupIdNotFoundException)) {
                    throw e;
                }
            }
            return "Kafka ready: cluster " + clusterId + ", " + nodes.size() + " node(s), "
                    + topics + " topic(s)";
        }
    }
}
