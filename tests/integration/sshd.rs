//! Real `sshd` servers on loopback for the fleet tests (and the Ansible tests after them).
//!
//! [`SshFleet::start`] generates one host key and one client key per fleet (ssh-keygen),
//! then starts one `/usr/sbin/sshd -D -e -f <config>` per host on a port the OS chose,
//! `ListenAddress 127.0.0.1`, public-key login for the user running the tests only. Each
//! host gets its own `$HOME` without creating users: the server sets `HOME` for its
//! sessions (`SetEnv HOME=...` in its config, which overrides the account's home), so
//! `$HOME/.octopus/...` differs per host while every host runs as the same account. As root
//! the same works (`PermitRootLogin prohibit-password`), and one host's home can be a small
//! tmpfs ([`HostSpec::tmpfs_kib`]) to fill its disk.
//!
//! The client side is a generated `ssh_config` with aliases `host1`..`hostN` (HostName
//! 127.0.0.1, Port, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile holding the host
//! key, StrictHostKeyChecking yes), passed as `-F`/`--sshConfig`. Where sshd or ssh-keygen
//! is missing or sshd will not start, [`SshFleet::start`] calls `util::skip` with the reason
//! and returns `None`. Everything is stopped (by process id) and unmounted on drop.

#![allow(dead_code)]

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

/// The sshd binary.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How one host is set up.
#[derive(Debug, Clone, Default)]
pub struct HostSpec {
    /// Mount a tmpfs of this many KiB as the host's `$HOME` (root only; the fleet skips
    /// when it cannot mount).
    pub tmpfs_kib: Option<u64>,
}

/// One running sshd.
pub struct SshdHost {
    /// The alias in the generated ssh config (`host1`...).
    pub alias: String,
    /// Its `$HOME`.
    pub home: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    mounted: bool,
}

impl SshdHost {
    /// `$HOME/.octopus/<instance>` of this host.
    pub fn tentacle_home(&self, instance: &str) -> PathBuf {
        self.home.join(".octopus").join(instance)
    }

    /// The sshd listener's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills this host's sshd and every process under it (its sessions): the network
    /// connection drops as if the machine went away.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let mut pids = descendants(child.id());
            pids.push(child.id());
            for pid in pids {
                // SAFETY: kill(2) on process ids we started or that descend from ours.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
            let _ = child.wait();
        }
    }
}

impl Drop for SshdHost {
    fn drop(&mut self) {
        self.kill();
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.home).status();
        }
    }
}

/// Every process descending from `root` (by parent id, from /proc).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// Several sshd hosts and the ssh config that reaches them.
pub struct SshFleet {
    /// Keys, configs, logs and the homes live here.
    pub dir: tempfile::TempDir,
    /// The hosts, `host1` first.
    pub hosts: Vec<SshdHost>,
    /// The client's ssh config (`--sshConfig`).
    pub ssh_config: PathBuf,
}

fn tool_missing(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
}

fn user_name() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            return std::env::var("USER").unwrap_or_else(|_| "root".into());
        }
        std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned()
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl SshFleet {
    /// `n` plain hosts; `None` (after a skip) when sshd cannot run here.
    pub fn start(n: usize) -> Option<SshFleet> {
        SshFleet::start_with(&vec![HostSpec::default(); n])
    }

    /// One host per spec; `None` (after a skip) when sshd cannot run here or a spec cannot
    /// be met (a tmpfs without root).
    pub fn start_with(specs: &[HostSpec]) -> Option<SshFleet> {
        if !Path::new(SSHD).exists() {
            util::skip(&format!("{SSHD} is not installed (.ci/install.d/ssh.sh installs openssh-server)"));
            return None;
        }
        for tool in ["ssh", "ssh-keygen"] {
            if tool_missing(tool) {
                util::skip(&format!("{tool} is not installed (.ci/install.d/ssh.sh installs openssh-client)"));
                return None;
            }
        }
        if specs.iter().any(|s| s.tmpfs_kib.is_some()) && !is_root() {
            util::skip("mounting a tmpfs as a host's home needs root");
            return None;
        }
        if is_root() {
            // sshd started as root wants its privilege-separation directory.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let dir = tempfile::Builder::new().prefix("calamari-sshd-").tempdir().expect("temp dir");
        // sshd refuses keys and configs in group/world-writable places.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let keygen = |name: &str| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "calamari-test", "-f"])
                .arg(dir.path().join(name))
                .output()
                .expect("run ssh-keygen");
            assert!(out.status.success(), "ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
        };
        keygen("host_key");
        keygen("client_key");
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(dir.path().join("client_key.pub"), &authorized).unwrap();
        let host_pub = std::fs::read_to_string(dir.path().join("host_key.pub")).unwrap();
        let user = user_name();
        let mut hosts = Vec::new();
        let mut known = String::new();
        let mut client = String::new();
        for (i, spec) in specs.iter().enumerate() {
            let alias = format!("host{}", i + 1);
            let home = dir.path().join(format!("home-{}", i + 1));
            std::fs::create_dir_all(&home).unwrap();
            let mut mounted = false;
            if let Some(kib) = spec.tmpfs_kib {
                let status = Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("size={kib}k,mode=0755"), "tmpfs"])
                    .arg(&home)
                    .status();
                if !status.is_ok_and(|s| s.success()) {
                    util::skip("cannot mount a tmpfs (not permitted in this container?)");
                    return None;
                }
                mounted = true;
            }
            let mut started = None;
            for _attempt in 0..5 {
                let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                let config = dir.path().join(format!("sshd_config-{}", i + 1));
                std::fs::write(
                    &config,
                    format!(
                        "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                         PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                         PermitRootLogin prohibit-password\nAllowUsers {user}\nMaxStartups 100:30:200\n\
                         MaxSessions 50\nLogLevel ERROR\nSetEnv HOME={home}\nSubsystem sftp internal-sftp\n",
                        hk = dir.path().join("host_key").display(),
                        ak = authorized.display(),
                        home = home.display(),
                    ),
                )
                .unwrap();
                let log = std::fs::File::create(dir.path().join(format!("sshd-{}.log", i + 1))).unwrap();
                let mut child = Command::new(SSHD)
                    .args(["-D", "-e", "-f"])
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("spawn sshd");
                if wait_for_banner(port, &mut child) {
                    started = Some((port, child));
                    break;
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            let Some((port, child)) = started else {
                let log = std::fs::read_to_string(dir.path().join(format!("sshd-{}.log", i + 1))).unwrap_or_default();
                util::skip(&format!("sshd would not start: {}", log.trim()));
                if mounted {
                    let _ = Command::new("umount").arg("-l").arg(&home).status();
                }
                return None;
            };
            known.push_str(&format!("[127.0.0.1]:{port} {host_pub}"));
            client.push_str(&format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
                 IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking yes\n  PasswordAuthentication no\n  LogLevel ERROR\n\n",
                key = dir.path().join("client_key").display(),
                known = dir.path().join("known_hosts").display(),
            ));
            hosts.push(SshdHost { alias, home, port, child: Some(child), mounted });
        }
        std::fs::write(dir.path().join("known_hosts"), known).unwrap();
        let ssh_config = dir.path().join("ssh_config");
        std::fs::write(&ssh_config, client).unwrap();
        Some(SshFleet { dir, hosts, ssh_config })
    }

    /// `--sshConfig=<file>` and one `--host=<alias>` per host.
    pub fn fleet_args(&self) -> Vec<String> {
        let mut args = vec![format!("--sshConfig={}", self.ssh_config.display())];
        args.extend(self.hosts.iter().map(|h| format!("--host={}", h.alias)));
        args
    }

    /// Appends an alias that points at a closed port (an unreachable host) to the config.
    pub fn add_unreachable(&self, alias: &str) {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut text = std::fs::read_to_string(&self.ssh_config).unwrap();
        text.push_str(&format!("Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  ConnectTimeout 5\n\n"));
        std::fs::write(&self.ssh_config, text).unwrap();
    }

    /// `ssh -F <config> <alias> <command>`: runs a command on a host directly.
    pub fn ssh(&self, alias: &str, command: &str) -> std::process::Output {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.ssh_config)
            .args(["-o", "BatchMode=yes", alias, command])
            .output()
            .expect("run ssh")
    }
}

/// Waits until sshd on `port` sends its banner; `false` when it exited first or took too long.
fn wait_for_banner(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + util::PROMPTLY;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut banner = [0u8; 4];
            if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
