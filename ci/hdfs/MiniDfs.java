// A single-JVM HDFS (one NameNode, two DataNodes) for `atenex hdfs` and the HDFS tests: Apache
// Hadoop's own MiniDFSCluster from hadoop-client-minicluster (Maven Central), nothing patched.
//
//   java -cp '<jars>/*:<classes>' MiniDfs <base dir> <namenode port> <ready file>
//
// Writes `hdfs://127.0.0.1:<port>` to <ready file> (via a rename, so readers never see half of it)
// once the DataNodes have registered, then runs until SIGTERM/SIGINT, when it shuts the cluster down.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.CountDownLatch;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

public class MiniDfs {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MiniDfs <base dir> <namenode port> <ready file>");
            System.exit(2);
        }
        String base = args[0];
        int port = Integer.parseInt(args[1]);
        Path ready = Paths.get(args[2]);

        Configuration conf = new HdfsConfiguration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base);
        // Two DataNodes, two replicas: a real write pipeline (DataNode to DataNode).
        conf.set("dfs.replication", "2");
        // Let the name node complete a file whose last block the client has committed before the
        // DataNodes' block reports arrive (HDFS-8999; allowed when the block has more expected
        // replicas than dfs.namenode.replication.min). Without it every close waits ~0.5 s in the
        // client's retry loop. Recommended for production clusters too (docs/landing.md).
        conf.set("dfs.namenode.file.close.num-committed-allowed", "1");
        conf.set("dfs.permissions.enabled", "false");
        // Small blocks so that tests cross block boundaries with little data.
        conf.set("dfs.namenode.fs-limits.min-block-size", "1048576");
        conf.set("dfs.blocksize", "8388608");
        // Bind everything to loopback; the DataNode advertises 127.0.0.1.
        conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
        conf.set("dfs.datanode.address", "127.0.0.1:0");
        conf.set("dfs.datanode.http.address", "127.0.0.1:0");
        conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
        conf.set("dfs.namenode.http-address", "127.0.0.1:0");
        conf.setBoolean("dfs.datanode.use.datanode.hostname", false);
        conf.setBoolean("dfs.client.use.datanode.hostname", false);

        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
            .nameNodePort(port)
            .numDataNodes(2)
            .format(true)
            .build();
        cluster.waitActive();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                cluster.shutdown();
            } finally {
                stopped.countDown();
            }
        }));

        String url = "hdfs://127.0.0.1:" + cluster.getNameNodePort();
        Path partial = ready.resolveSibling(ready.getFileName() + ".partial");
        Files.write(partial, (url + "\n").getBytes(StandardCharsets.UTF_8));
        Files.move(partial, ready, StandardCopyOption.ATOMIC_MOVE);
        System.out.println("MiniDFSCluster ready at " + url);
        stopped.await();
    }
}
