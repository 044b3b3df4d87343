#!/usr/bin/env python3
"""The fleet over a slow network: `calamari fleet`, Ansible and an scp+ssh loop doing the same
deployment on 1, 8 and 32 hosts, each reached through a link with 25 ms of delay each way and
100 Mbit/s each way (benches/fleet/relay.rs), each host its own user, `$HOME` and sshd.

Run it through benches/fleet-wan.sh (which builds the release binary and the relay). Needs
root (users, cgroups), /usr/sbin/sshd and, for the Ansible column, ansible-playbook
(.ci/install.d/ssh.sh installs both).

What is measured per tool and host count (mean of --runs runs after one untimed run):
- wall seconds;
- the CPU the whole machine spent, per host, split into the client side (the driver and its
  ssh processes) and the server side (sshd and everything under it: the remote calamari, the
  deployment's scripts, Ansible's Python modules), from two cpuacct (v1) or cgroup v2
  groups the harness creates; the relay runs in a third group and is left out;
- for calamari: the driver's peak resident memory and open file descriptors (sampled from
  /proc every 10 ms) and its floor: the larger of its time at 1 host and the CPU all hosts'
  work needs spread over the machine's cores.
Then the delta: a package of --delta-mb MB of random data with 1 % changed, to one host that
holds the previous version, as a delta and with --noDelta.

Everything lives on 127.0.0.1: the sshd servers, the relay in front of them. The users,
cgroups, processes and files the harness made are removed at the end, also on an error or
SIGTERM/SIGINT; every command has a time limit.
"""

import argparse
import json
import os
import pwd
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

USER_PREFIX = "calfleet"
CGROUP_NAME = f"calamari-fleet-wan-{os.getpid()}"
COMMAND_TIMEOUT = 900


def log(text):
    print(text, file=sys.stderr, flush=True)


class CpuGroups:
    """Three groups (client, server, relay) whose CPU time the kernel counts, v1 cpuacct or v2."""

    def __init__(self):
        v1 = "/sys/fs/cgroup/cpuacct"
        v2 = next((p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                   if os.path.exists(os.path.join(p, "cgroup.procs"))
                   and os.path.exists(os.path.join(p, "cgroup.controllers"))), None)
        if os.path.exists(os.path.join(v1, "cpuacct.usage")):
            self.root, self.v2 = os.path.join(v1, CGROUP_NAME), False
        elif v2:
            self.root, self.v2 = os.path.join(v2, CGROUP_NAME), True
        else:
            raise SystemExit("no cpuacct or cgroup v2 hierarchy to count CPU time with")
        self.groups = {}
        os.mkdir(self.root)
        for name in ("client", "server", "relay"):
            path = os.path.join(self.root, name)
            os.mkdir(path)
            self.groups[name] = path

    def procs(self, name):
        return os.path.join(self.groups[name], "cgroup.procs")

    def wrap(self, name, argv):
        """argv, started inside group `name` (the shell moves itself in, then execs)."""
        return ["sh", "-c", f'echo $$ > {self.procs(name)} && exec "$@"', "cgroup"] + list(argv)

    def usage_ns(self, name):
        path = self.groups[name]
        if self.v2:
            with open(os.path.join(path, "cpu.stat")) as f:
                for line in f:
                    key, value = line.split()
                    if key == "usage_usec":
                        return int(value) * 1000
            return 0
        with open(os.path.join(path, "cpuacct.usage")) as f:
            return int(f.read())

    def kill_all(self, name):
        for _ in range(50):
            try:
                with open(self.procs(name)) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def remove(self):
        for name in list(self.groups):
            self.kill_all(name)
            for _ in range(100):
                try:
                    os.rmdir(self.groups[name])
                    break
                except OSError:
                    time.sleep(0.05)
        try:
            os.rmdir(self.root)
        except OSError as e:
            log(f"could not remove {self.root}: {e}")


def busy_seconds():
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / ticks


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, **kwargs):
    kwargs.setdefault("timeout", COMMAND_TIMEOUT)
    return subprocess.run(argv, check=True, **kwargs)


class Lab:
    """N users, N sshd servers and the relay in front of them."""

    def __init__(self, args, work, groups):
        self.args, self.work, self.groups = args, work, groups
        self.users, self.homes = [], []
        self.sshd, self.relay = [], None

    def start(self, n):
        work = self.work
        os.chmod(work, 0o755)
        for key in ("host_key", "client_key"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "calamari-bench", "-f",
                 os.path.join(work, key)])
        authorized = os.path.join(work, "authorized_keys")
        shutil.copy(os.path.join(work, "client_key.pub"), authorized)
        os.chmod(authorized, 0o644)
        os.makedirs("/run/sshd", exist_ok=True)
        ports = []
        for i in range(1, n + 1):
            user, home = f"{USER_PREFIX}{i}", os.path.join(work, f"home-{i}")
            run(["useradd", "--password", "*", "--no-create-home", "--home-dir", home, "--shell", "/bin/bash", "--no-user-group",
                 "--gid", "nogroup", user])
            self.users.append(user)
            os.mkdir(home, 0o755)
            pw = pwd.getpwnam(user)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            self.homes.append(home)
            port = free_port()
            config = os.path.join(work, f"sshd_config-{i}")
            with open(config, "w") as f:
                f.write(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {work}/host_key
AuthorizedKeysFile {authorized}
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowUsers {user}
MaxStartups 100:30:200
MaxSessions 50
LogLevel ERROR
Subsystem sftp internal-sftp
""")
            log_file = open(os.path.join(work, f"sshd-{i}.log"), "w")
            self.sshd.append(subprocess.Popen(self.groups.wrap("server", ["/usr/sbin/sshd", "-D", "-e", "-f", config]),
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file))
            ports.append(port)
        self.relay = subprocess.Popen(
            self.groups.wrap("relay", [self.args.relay, str(self.args.delay_ms), str(self.args.rate_mbit)]
                             + [str(p) for p in ports]),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        first = self.relay.stdout.readline().split()
        if not first or first[0] != "ready":
            raise SystemExit("the relay did not start")
        relay_ports = first[1:]
        with open(os.path.join(work, "host_key.pub")) as f:
            host_pub = f.read().strip()
        with open(os.path.join(work, "known_hosts"), "w") as known, open(os.path.join(work, "ssh_config"), "w") as cfg:
            for i, port in enumerate(relay_ports, 1):
                known.write(f"[127.0.0.1]:{port} {host_pub}\n")
                cfg.write(f"""Host host{i}
  HostName 127.0.0.1
  Port {port}
  User {USER_PREFIX}{i}
  IdentityFile {work}/client_key
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {work}/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  PasswordAuthentication no
  LogLevel ERROR
{f"  KexAlgorithms {self.args.kex}" if self.args.kex else ""}
{f"  ControlMaster auto{chr(10)}  ControlPath {work}/cm-%C{chr(10)}  ControlPersist 600" if self.args.warm else ""}
""")
        deadline = time.time() + 60
        for i in range(1, n + 1):
            while True:
                ok = subprocess.run(["ssh", "-F", os.path.join(work, "ssh_config"), "-o", "BatchMode=yes", f"host{i}",
                                     "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
                if ok.returncode == 0:
                    break
                if time.time() > deadline:
                    raise SystemExit(f"host{i} does not answer: {ok.stderr.decode()}")
                time.sleep(0.1)
        log(f"{n} hosts up behind the relay ({self.args.delay_ms} ms each way, {self.args.rate_mbit} Mbit/s)")

    def stop(self):
        for p in self.sshd + ([self.relay] if self.relay else []):
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:
                pass
        for name in ("client", "server", "relay"):
            self.groups.kill_all(name)
        for user in self.users:
            subprocess.run(["userdel", user], capture_output=True, timeout=60)


class Sampler(threading.Thread):
    """Peak open file descriptors and resident memory of one process, from /proc."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.fds, self.rss_kib, self.done = pid, 0, 0, False

    def run(self):
        while not self.done:
            try:
                self.fds = max(self.fds, len(os.listdir(f"/proc/{self.pid}/fd")))
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.rss_kib = max(self.rss_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.01)


class Bench:
    def __init__(self, args, lab):
        self.args, self.lab, self.work = args, lab, lab.work
        self.config = os.path.join(self.work, "ssh_config")

    def prepare(self):
        """The package (index.html with a substitution target, three scripts) and variables."""
        pkg = os.path.join(self.work, "pkg")
        os.mkdir(pkg)
        with open(os.path.join(pkg, "index.html"), "w") as f:
            f.write("Hello #{Name}\n")
        for step in ("PreDeploy", "Deploy", "PostDeploy"):
            with open(os.path.join(pkg, f"{step}.sh"), "w") as f:
                f.write(f'echo "{step} on $(hostname)"\n')
        self.package = os.path.join(self.work, "Acme.Web.1.0.0.tar.gz")
        run(["tar", "-czf", self.package, "-C", pkg, "."])
        os.chmod(self.work, 0o755)
        os.chmod(self.package, 0o644)
        self.variables = os.path.join(self.work, "vars.json")
        with open(self.variables, "w") as f:
            json.dump([{"k": "Octopus.Action.EnabledFeatures", "v": "Octopus.Features.SubstituteInFiles", "s": False},
                       {"k": "Octopus.Action.SubstituteInFiles.TargetFiles", "v": "index.html", "s": False},
                       {"k": "Name", "v": "Fleet", "s": False}], f)

    def hosts(self, n):
        return [f"host{i}" for i in range(1, n + 1)]

    def timed(self, argv, sample=False, env=None):
        """Runs argv in the client group: (wall s, client CPU s, server CPU s, peak fds, peak RSS KiB)."""
        groups = self.lab.groups
        before = (groups.usage_ns("client"), groups.usage_ns("server"), groups.usage_ns("relay"), busy_seconds())
        t0 = time.perf_counter()
        p = subprocess.Popen(groups.wrap("client", argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=env)
        sampler = None
        if sample:
            # The wrapper shell execs argv: same process id.
            sampler = Sampler(p.pid)
            sampler.start()
        out, _ = p.communicate(timeout=COMMAND_TIMEOUT)
        wall = time.perf_counter() - t0
        if sampler:
            sampler.done = True
            sampler.join()
        if p.returncode != 0:
            sys.stderr.write(out.decode(errors="replace")[-4000:])
            raise SystemExit(f"{argv[0]} failed with {p.returncode}")
        # Processes that outlive the command (ssh masters kept by ControlPersist) would count
        # into the next run: stop them now (after the measurement), unless --warm.
        after = (groups.usage_ns("client"), groups.usage_ns("server"), groups.usage_ns("relay"), busy_seconds())
        if not self.args.warm:
            groups.kill_all("client")
        ours = sum(after[i] - before[i] for i in range(3)) / 1e9
        others = max(0.0, after[3] - before[3] - ours)
        return {"wall": wall, "client": (after[0] - before[0]) / 1e9, "server": (after[1] - before[1]) / 1e9,
                "relay": (after[2] - before[2]) / 1e9, "others": others,
                "fds": sampler.fds if sampler else None, "rss_kib": sampler.rss_kib if sampler else None,
                "output": out.decode(errors="replace")}

    # The three tools.

    def calamari(self, n, extra=()):
        argv = [self.args.calamari, "fleet", "deploy-package", f"--package={self.package}",
                f"--variables={self.variables}", f"--sshConfig={self.config}", f"--parallel={n}", *extra]
        argv += [f"--host={h}" for h in self.hosts(n)]
        return self.timed(argv, sample=True, env=dict(os.environ, XDG_CACHE_HOME=os.path.join(self.work, "cache")))

    def loop(self, n):
        script = os.path.join(self.work, "loop.sh")
        with open(script, "w") as f:
            f.write(f"""set -e
for h in "$@"; do
  scp -q -F {self.config} {self.package} "$h:loop.tar.gz"
  ssh -F {self.config} "$h" "set -e; d=\\$HOME/Applications/loop/1.0.0; rm -rf \\$d; mkdir -p \\$d; cd \\$d;
    tar -xzf \\$HOME/loop.tar.gz; sed -i 's/#{{Name}}/Fleet/' index.html;
    sh PreDeploy.sh; sh Deploy.sh; sh PostDeploy.sh; rm -f \\$HOME/loop.tar.gz" >/dev/null
done
""")
        return self.timed(["bash", script, *self.hosts(n)])

    def ansible(self, n):
        inventory = os.path.join(self.work, f"inventory-{n}.ini")
        with open(inventory, "w") as f:
            f.write("[targets]\n")
            for i, h in enumerate(self.hosts(n)):
                f.write(f"{h} ansible_env_home={self.lab.homes[i]}\n")
            f.write(f"[targets:vars]\nansible_python_interpreter=/usr/bin/python3\n"
                    f"ansible_ssh_common_args='-F {self.config}'\n")
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORKS=str(n), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCAL_TEMP=os.path.join(self.work, "ansible-tmp"),
                   ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(self.work, "ansible-cp"))
        playbook = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbook.yml")
        return self.timed(["ansible-playbook", "-i", inventory, playbook, "-e", f"package={self.package}"], env=env)

    def mean(self, tool, n):
        getattr(self, tool)(n)  # untimed: installs Calamari, fills caches, warms the page cache
        results = [getattr(self, tool)(n) for _ in range(self.args.runs)]
        keys = ("wall", "client", "server", "relay", "others")
        summary = {k: statistics.mean(r[k] for r in results) for k in keys}
        summary["wall_min"] = min(r["wall"] for r in results)
        if results[0]["fds"] is not None:
            summary["fds"] = max(r["fds"] for r in results)
            summary["rss_kib"] = max(r["rss_kib"] for r in results)
        return summary

    def components(self, n):
        """What one host's share is made of: an ssh connection that runs `true` (ssh, sshd,
        the login shell), and the deployment alone (calamari deploy-package run locally,
        with its three scripts)."""
        ssh = [self.timed(["ssh", "-F", self.config, "-o", "BatchMode=yes", f"host{i}", "true"])
               for i in range(1, n + 1)]
        home = os.path.join(self.work, "local-home")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, TentacleHome=home, HOME=home)
        deploy = [self.timed([self.args.calamari, "deploy-package", f"--package={self.package}",
                              f"--variables={self.variables}"], env=env) for _ in range(5)]
        return {
            "ssh_client": statistics.mean(r["client"] for r in ssh),
            "ssh_server": statistics.mean(r["server"] for r in ssh),
            "deploy": statistics.mean(r["client"] for r in deploy),
        }

    def delta(self):
        """A package of random data, 1 % changed, as a delta and whole, to host1."""
        mb = self.args.delta_mb
        size = mb * 1_000_000
        rng = random.Random(7)
        data = bytearray(rng.randbytes(size))
        d = os.path.join(self.work, "delta")
        os.mkdir(d)

        def package(version, body):
            src = os.path.join(d, f"src-{version}")
            os.mkdir(src)
            with open(os.path.join(src, "data.bin"), "wb") as f:
                f.write(body)
            path = os.path.join(d, f"Acme.Data.{version}.tar")
            run(["tar", "-cf", path, "-C", src, "data.bin"])
            shutil.rmtree(src)
            os.chmod(path, 0o644)
            return path

        v1 = package("1.0.0", data)
        # 1 % rewritten, in 100 runs spread through the file.
        for k in range(100):
            start = k * (size // 100) + 4096
            data[start:start + size // 10_000] = rng.randbytes(size // 10_000)
        v2 = package("1.0.1", data)
        os.chmod(d, 0o755)
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(self.work, "cache"))
        base = [self.args.calamari, "fleet", "deploy-package", f"--sshConfig={self.config}", "--host=host1",
                f"--report={os.path.join(d, 'report.json')}"]
        self.timed(base + [f"--package={v1}"], env=env)
        cache = os.path.join(self.lab.homes[0], ".octopus", "OctopusServer", "Files")
        rows = []
        for mode in ("delta", "full"):
            for _ in range(self.args.delta_runs):
                for name in os.listdir(cache):
                    if "1.0.1" in name:
                        os.remove(os.path.join(cache, name))
                extra = ["--noDelta"] if mode == "full" else []
                events = os.path.join(d, "events.jsonl")
                r = self.timed(base + [f"--package={v2}", f"--events={events}"] + extra, env=env)
                with open(os.path.join(d, "report.json")) as f:
                    sent = json.load(f)[0]["packagesSent"][0]
                if sent["mode"] != mode:
                    raise SystemExit(f"expected a {mode} transfer, the report says {sent}")
                with open(events) as f:
                    at = {e["event"]: e["elapsed"] for e in map(json.loads, f)}
                timeline = ", ".join(f"{k} {at[k]:.2f}" for k in ("connected", "package", "uploaded", "finished")
                                     if k in at)
                rows.append((mode, r["wall"], sent["bytes"], r["client"] + r["server"], timeline))
        return os.path.getsize(v2), rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calamari", required=True)
    parser.add_argument("--relay", required=True)
    parser.add_argument("--hosts", default="1,8,32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default="calamari,ansible,loop")
    parser.add_argument("--delay-ms", type=int, default=25)
    parser.add_argument("--rate-mbit", type=float, default=100)
    parser.add_argument("--delta-mb", type=int, default=100, help="0: no delta measurement")
    parser.add_argument("--delta-runs", type=int, default=2)
    parser.add_argument("--warm", action="store_true",
                        help="keep ssh connections between runs (ControlMaster auto, ControlPersist) for every tool; "
                             "default: each timed run connects afresh")
    parser.add_argument("--kex", default="",
                        help="KexAlgorithms for every tool's ssh (e.g. curve25519-sha256); default: OpenSSH's")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates one user per host and cgroups to count CPU time")
    counts = [int(c) for c in args.hosts.split(",")]
    tools = args.tools.split(",")
    if "ansible" in tools and shutil.which("ansible-playbook") is None:
        log("ansible-playbook missing (.ci/install.d/ssh.sh): Ansible skipped")
        tools.remove("ansible")
    work = tempfile.mkdtemp(prefix="calamari-fleet-wan.", dir="/tmp")
    groups = CpuGroups()
    lab = Lab(args, work, groups)

    def stop(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    cores = os.cpu_count()
    load_start = os.getloadavg()[0]
    try:
        lab.start(max(counts))
        bench = Bench(args, lab)
        bench.prepare()
        results = {}
        for n in counts:
            for tool in tools:
                results[(tool, n)] = r = bench.mean(tool, n)
                extra = f", driver peak {r['fds']} fds, {r['rss_kib'] / 1024:.1f} MiB" if "fds" in r else ""
                log(f"{n:>3} hosts {tool:<9} {r['wall']:6.2f} s (min {r['wall_min']:.2f}), CPU per host "
                    f"{(r['client'] + r['server']) / n * 1000:5.1f} ms (client {r['client'] / n * 1000:.1f}, "
                    f"server {r['server'] / n * 1000:.1f}){extra}")
        kex = (args.kex or "OpenSSH's default") + (", connections kept between runs (--warm)" if args.warm else "")
        print(f"\n{args.delay_ms} ms each way, {args.rate_mbit:g} Mbit/s per host and direction, {cores} cores, "
              f"key exchange {kex}, mean of {args.runs} runs; load average {load_start:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end\n")
        print("| hosts | tool | wall s | CPU ms per host (client + server) | vs calamari |")
        print("|---|---|---|---|---|")
        for n in counts:
            base = results.get(("calamari", n))
            for tool in tools:
                r = results[(tool, n)]
                ratio = f"{r['wall'] / base['wall']:.1f}x" if base and tool != "calamari" else ""
                print(f"| {n} | {tool} | {r['wall']:.2f} | {(r['client'] + r['server']) / n * 1000:.0f} "
                      f"({r['client'] / n * 1000:.0f} + {r['server'] / n * 1000:.0f}) | {ratio} |")
        if "calamari" in tools:
            one = results.get(("calamari", 1))
            for n in counts:
                r = results[("calamari", n)]
                cpu = r["client"] + r["server"]
                t1 = one["wall"] if one else 0.0
                floor = max(t1, cpu / cores)
                # Other people's processes took this much of the machine meanwhile (and the relay).
                free = max(0.1, cores - (r["others"] + r["relay"]) / r["wall"])
                fair = max(t1, cpu / free)
                print(f"\ncalamari at {n} hosts: {r['wall']:.2f} s against a floor of {floor:.2f} s "
                      f"({r['wall'] / floor:.2f}x; 1 host {t1:.2f} s, CPU {cpu:.2f} s / {cores} cores); other "
                      f"processes and the relay kept {cores - free:.2f} of the {cores} cores busy meanwhile: "
                      f"{fair:.2f} s on the {free:.2f} left ({r['wall'] / fair:.2f}x); driver peak {r['fds']} open "
                      f"fds, {r['rss_kib'] / 1024:.1f} MiB resident")
        if "calamari" in tools:
            c = bench.components(max(counts))
            r = results[("calamari", max(counts))]
            n = max(counts)
            total = (r["client"] + r["server"]) / n
            rest = total - c["ssh_client"] - c["ssh_server"] - c["deploy"]
            print(f"\nPer host at {n} hosts, {total * 1000:.0f} ms of CPU: an ssh connection running `true` costs "
                  f"{c['ssh_client'] * 1000:.0f} ms in ssh and {c['ssh_server'] * 1000:.0f} ms in sshd and the login "
                  f"shell; the deployment alone (calamari deploy-package and its three scripts, run locally) "
                  f"{c['deploy'] * 1000:.0f} ms; the rest (the driver, the boot script, the agent) {rest * 1000:.0f} ms")
        if args.delta_mb > 0 and "calamari" in tools:
            size, rows = bench.delta()
            print(f"\nDelta, one host, a {size:,}-byte .tar with 1 % changed, the previous version cached:")
            print("| sent as | wall s | bytes sent | CPU s | events (s from the start) |")
            print("|---|---|---|---|---|")
            for mode, wall, sent, cpu, timeline in rows:
                print(f"| {mode} | {wall:.2f} | {sent:,} | {cpu:.2f} | {timeline} |")
    finally:
        lab.stop()
        groups.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
