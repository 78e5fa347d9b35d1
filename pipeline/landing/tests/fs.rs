//! One contract, three filesystems: local disk, in memory, and HDFS — a real MiniDFSCluster from
//! Maven Central, started by the test harness (atenex_hdfs::testing).

use atenex_hdfs::{Hdfs, HdfsUrl, testing};
use atenex_landing::fs::hdfs::HdfsFs;
use atenex_landing::fs::{Fs, LocalFs, MemFs, is_fenced};
use std::io::ErrorKind;

/// What the landing relies on, checked the same way on every filesystem.
fn contract(fs: &mut dyn Fs) {
    // Missing things.
    assert_eq!(
        fs.list("/d").unwrap(),
        Vec::<String>::new(),
        "missing dir lists empty"
    );
    assert_eq!(fs.read("/d/none").unwrap(), None);
    fs.delete("/d/none")
        .expect("deleting a missing file is not an error");
    assert_eq!(
        fs.sync("/d/none").unwrap_err().kind(),
        ErrorKind::NotFound,
        "syncing a missing file"
    );

    // Appends create the file and its directories; sync makes them durable.
    fs.append("/d/+tmp/a/t+0+0001_tmp.json", b"{\"n\":1}\n")
        .unwrap();
    fs.append("/d/+tmp/a/t+0+0001_tmp.json", b"{\"n\":2}\n")
        .unwrap();
    fs.sync("/d/+tmp/a/t+0+0001_tmp.json").unwrap();
    assert_eq!(
        fs.read("/d/+tmp/a/t+0+0001_tmp.json").unwrap().as_deref(),
        Some(&b"{\"n\":1}\n{\"n\":2}\n"[..])
    );

    // Large files cross HDFS blocks (8 MiB in the test cluster): 10 MiB in 96 KiB appends.
    let chunk: Vec<u8> = (0..96 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut expected = Vec::new();
    for i in 0..107 {
        let mut c = chunk.clone();
        c[0] = b'0' + (i % 10) as u8;
        fs.append("/d/+tmp/b/big_tmp.json", &c).unwrap();
        expected.extend_from_slice(&c);
    }
    fs.sync("/d/+tmp/b/big_tmp.json").unwrap();
    assert_eq!(
        fs.read("/d/+tmp/b/big_tmp.json").unwrap().unwrap(),
        expected
    );

    // Renames move files into directories that do not exist yet.
    fs.rename(
        "/d/+tmp/a/t+0+0001_tmp.json",
        "/d/t/year=2026/month=11/t+0+0001+0002.json",
    )
    .unwrap();
    fs.rename("/d/+tmp/b/big_tmp.json", "/d/t/year=2026/month=12/big.json")
        .unwrap();
    assert_eq!(fs.read("/d/+tmp/a/t+0+0001_tmp.json").unwrap(), None);
    assert_eq!(
        fs.read("/d/t/year=2026/month=11/t+0+0001+0002.json")
            .unwrap()
            .as_deref(),
        Some(&b"{\"n\":1}\n{\"n\":2}\n"[..])
    );
    assert_eq!(
        fs.read("/d/t/year=2026/month=12/big.json")
            .unwrap()
            .unwrap()
            .len(),
        expected.len()
    );
    assert_eq!(
        fs.rename("/d/+tmp/gone_tmp.json", "/d/t/x.json")
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "renaming a missing file"
    );

    // Listing: files only, recursive, sorted, under the directory as the caller wrote it.
    assert_eq!(
        fs.list("/d").unwrap(),
        vec![
            "/d/t/year=2026/month=11/t+0+0001+0002.json".to_owned(),
            "/d/t/year=2026/month=12/big.json".to_owned(),
        ]
    );
    assert_eq!(
        fs.list("/d/t/year=2026/month=11/").unwrap(),
        vec!["/d/t/year=2026/month=11/t+0+0001+0002.json".to_owned()]
    );

    // Deletes, including of a file still being written (an abandoned temp file).
    fs.append("/d/+tmp/c/open_tmp.json", b"half").unwrap();
    fs.delete("/d/+tmp/c/open_tmp.json").unwrap();
    assert_eq!(fs.read("/d/+tmp/c/open_tmp.json").unwrap(), None);
    fs.delete("/d/t/year=2026/month=12/big.json").unwrap();
    assert_eq!(
        fs.list("/d").unwrap(),
        vec!["/d/t/year=2026/month=11/t+0+0001+0002.json".to_owned()]
    );
}

/// A claim, as one owner sees it: created empty when missing, appended to and synced through the
/// claim, its content returned when claimed again, emptied (on HDFS only past 1 MiB: the blocks of
/// commits done stay, which recovery passes over), and deleted when released.
fn claim_contract(fs: &mut dyn Fs, empties: bool) {
    let log = "/logs/t/0/log";
    assert_eq!(fs.claim(log).unwrap(), None, "a missing file");
    assert_eq!(fs.list("/logs").unwrap(), vec![log.to_owned()], "created");
    fs.append(log, b"BEGIN\nEND\n").unwrap();
    fs.sync(log).unwrap();
    assert_eq!(
        fs.claim(log).unwrap().as_deref(),
        Some(&b"BEGIN\nEND\n"[..]),
        "claimed again: what it holds"
    );
    fs.truncate(log).unwrap();
    fs.append(log, b"BEGIN\n").unwrap();
    fs.sync(log).unwrap();
    let expected: &[u8] = if empties {
        b"BEGIN\n"
    } else {
        b"BEGIN\nEND\nBEGIN\n"
    };
    assert_eq!(fs.claim(log).unwrap().as_deref(), Some(expected));
    fs.release(log).unwrap();
    assert_eq!(fs.list("/logs").unwrap(), Vec::<String>::new(), "released");
    fs.release(log).expect("releasing twice is not an error");
}

/// The real stores refuse a path that would leave their root, whatever built it.
fn confined(fs: &mut dyn Fs) {
    for path in ["/../escape.json", "/d/../../x", "/d/a\0b"] {
        for e in [
            fs.append(path, b"x").unwrap_err(),
            fs.rename("/d/a", path).unwrap_err(),
            fs.read(path).unwrap_err(),
            fs.list(path).unwrap_err(),
            fs.delete(path).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{path:?}: {e}");
        }
    }
}

#[test]
fn in_memory() {
    contract(&mut MemFs::new());
    claim_contract(&mut MemFs::new(), true);
}

#[test]
fn local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    contract(&mut LocalFs::new(&root));
    confined(&mut LocalFs::new(&root));
    claim_contract(&mut LocalFs::new(&root), true);
    // A `.` segment stays under the root (`topics.dir=./landing`).
    let mut fs = LocalFs::new(&root);
    fs.append("./landing/t/x.json", b"{}\n").unwrap();
    assert_eq!(
        std::fs::read(root.join("landing/t/x.json")).unwrap(),
        b"{}\n"
    );
    assert!(!dir.path().join("escape.json").exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the root"
    );
}

fn hdfs_at(dir: &str) -> HdfsFs {
    let url = HdfsUrl::parse(&format!("{}{dir}", testing::namenode())).unwrap();
    HdfsFs::new(Hdfs::connect(&url).unwrap())
}

#[test]
fn hdfs_minidfscluster() {
    contract(&mut hdfs_at(&testing::unique_dir("contract")));
    confined(&mut hdfs_at(&testing::unique_dir("confined")));
    claim_contract(&mut hdfs_at(&testing::unique_dir("claim")), false);
}

#[test]
fn hdfs_a_file_left_open_by_a_dead_writer_is_recovered_and_read_whole() {
    // A writer process dies after hsync but before close: the file stays under construction with
    // a lease nobody renews. A new client reads it (forcing lease recovery) without waiting out the
    // lease, and can rename and delete it.
    let dir = testing::unique_dir("lease");
    let url = HdfsUrl::parse(&format!("{}{dir}", testing::namenode())).unwrap();
    let hdfs = Hdfs::connect(&url).unwrap();
    let path = url.path("/logs/t/0/log");
    let client = hdfs.client().clone();
    let p = path.clone();
    hdfs.run(async move {
        let mut w = client
            .create(&p, hdfs_native::WriteOptions::default())
            .await
            .unwrap();
        w.write_bytes(bytes::Bytes::from_static(b"BEGIN\nEND\n"))
            .await
            .unwrap();
        w.hsync().await.unwrap();
        // The writer's process dies: no close, and its lease is never released.
        std::mem::forget(w);
    });
    drop(hdfs);
    let started = std::time::Instant::now();
    let fs = HdfsFs::new(Hdfs::connect(&url).unwrap());
    assert_eq!(
        fs.read("/logs/t/0/log").unwrap().as_deref(),
        Some(&b"BEGIN\nEND\n"[..])
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "read without waiting for the 60 s soft lease limit"
    );
    let mut fs = fs;
    fs.delete("/logs/t/0/log").unwrap();
    assert_eq!(fs.read("/logs/t/0/log").unwrap(), None);
}

#[test]
fn hdfs_a_claim_fences_the_previous_owner_even_alive() {
    // Two instances on one store: the new owner of a partition claims its commit log while the
    // old one still runs (a zombie). The old one's appends and syncs fail from then on — it never
    // gets to rename — and it never reopens the log by name.
    let dir = testing::unique_dir("fence");
    let (mut old, mut new) = (hdfs_at(&dir), hdfs_at(&dir));
    let log = "/logs/t/0/log";
    old.claim(log).unwrap();
    old.append(log, b"BEGIN\nEND\n").unwrap();
    old.sync(log).unwrap();
    assert_eq!(
        new.claim(log).unwrap().as_deref(),
        Some(&b"BEGIN\nEND\n"[..]),
        "the new owner reads what the old one synced"
    );
    let late = old
        .append(log, b"BEGIN\nCOMMIT a b\nEND\n")
        .and_then(|()| old.sync(log));
    let late = late.expect_err("the old owner is fenced");
    assert!(
        is_fenced(&late),
        "the namenode's refusal is told as fenced: {late}"
    );
    let again = old.append(log, b"BEGIN\n").unwrap_err();
    assert!(
        is_fenced(&again),
        "and stays fenced: the log is never reopened by name ({again})"
    );
    assert!(old.truncate(log).is_err());
    old.release(log).unwrap();
    new.append(log, b"BEGIN\nCOMMIT c d\nEND\n").unwrap();
    new.sync(log).unwrap();
    assert_eq!(
        new.claim(log).unwrap().as_deref(),
        Some(&b"BEGIN\nEND\nBEGIN\nCOMMIT c d\nEND\n"[..]),
        "the fenced owner's release deleted nothing of the new owner's"
    );
}

#[test]
fn local_disk_a_claim_held_by_a_live_process_is_refused() {
    // Local disk cannot fence a live holder: the second claim waits for the first to end.
    let dir = tempfile::tempdir().unwrap();
    let (mut first, mut second) = (LocalFs::new(dir.path()), LocalFs::new(dir.path()));
    let log = "/logs/t/0/log";
    first.claim(log).unwrap();
    let refused = second.claim(log).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::WouldBlock, "{refused}");
    assert!(refused.to_string().contains("held by another live process"));
    first.append(log, b"BEGIN\nEND\n").unwrap();
    drop(first); // the process ends: its lock goes with it
    assert_eq!(
        second.claim(log).unwrap().as_deref(),
        Some(&b"BEGIN\nEND\n"[..])
    );
}

#[test]
fn hdfs_a_claimed_log_past_a_mib_is_emptied_and_still_held() {
    // Below 1 MiB a truncate keeps the blocks (HDFS cannot shorten a file being written); past
    // it the file is closed, deleted and created again — still claimed: a previous owner that
    // wakes cannot write to the new file either.
    let dir = testing::unique_dir("truncate");
    let (mut old, mut fs) = (hdfs_at(&dir), hdfs_at(&dir));
    let log = "/logs/t/0/log";
    old.claim(log).unwrap();
    fs.claim(log).unwrap();
    let block = format!("BEGIN\nCOMMIT {} b\nEND\n", "a".repeat(1 << 20));
    fs.append(log, block.as_bytes()).unwrap();
    fs.sync(log).unwrap();
    fs.truncate(log).unwrap();
    fs.append(log, b"BEGIN\nEND\n").unwrap();
    fs.sync(log).unwrap();
    assert!(old.append(log, b"x").and_then(|()| old.sync(log)).is_err());
    assert_eq!(
        fs.claim(log).unwrap().as_deref(),
        Some(&b"BEGIN\nEND\n"[..]),
        "emptied past 1 MiB, then appended to through the claim"
    );
}

/// The in-memory store's handles behave as processes writing one HDFS (the simulator runs several
/// landing instances on it): a claim fences the previous holder, a file deleted under an open
/// writer fails that writer, and a crash loses only the crashed process's unsynced bytes.
#[test]
fn in_memory_handles_fence_one_another_and_crash_alone() {
    use atenex_landing::fs::is_fenced;
    let log = "/logs/t/0/log";
    let mut fs = MemFs::new();
    fs.handle(1).claim(log).unwrap();
    fs.handle(1).append(log, b"BEGIN\n").unwrap();
    fs.handle(1).sync(log).unwrap();
    // Process 2 takes the partition over: process 1 is fenced on the claimed log.
    assert_eq!(
        fs.handle(2).claim(log).unwrap().as_deref(),
        Some(&b"BEGIN\n"[..])
    );
    let e = fs.handle(1).append(log, b"END\n").unwrap_err();
    assert!(is_fenced(&e), "{e}");
    assert!(is_fenced(&fs.handle(1).sync(log).unwrap_err()));
    assert!(is_fenced(&fs.handle(1).truncate(log).unwrap_err()));
    fs.handle(1)
        .release(log)
        .expect("a fenced claim is dropped");
    assert!(fs.read(log).unwrap().is_some(), "the holder's file stays");
    fs.handle(2).append(log, b"END\n").unwrap();

    // A temp file deleted under its writer (the new owner's recovery) fails that writer.
    let temp = "/+tmp/t/t+0+0+1_tmp.json";
    fs.handle(1).append(temp, b"a\n").unwrap();
    fs.handle(2).delete(temp).unwrap();
    assert!(is_fenced(&fs.handle(1).append(temp, b"b\n").unwrap_err()));
    assert_eq!(
        fs.read(temp).unwrap(),
        None,
        "not created again by the fenced writer"
    );

    // A crash of process 3 loses its unsynced bytes, not process 2's.
    let mine = "/+tmp/t/t+1+0+3_tmp.json";
    fs.handle(3).append(mine, b"x\n").unwrap();
    fs.crash_after_of(3, 0);
    assert!(MemFs::is_crash(&fs.handle(3).sync(mine).unwrap_err()));
    fs.crash_of(3);
    assert_eq!(fs.read(mine).unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(fs.read(log).unwrap().as_deref(), Some(&b"BEGIN\nEND\n"[..]));
    fs.handle(3)
        .append(mine, b"y\n")
        .expect("a new process on the handle works");
}
