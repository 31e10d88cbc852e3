// CPU time and memory of processes, how long their threads waited for a core, and the machine's
// busy and stolen CPU time, read from /proc (Linux), for the benchmark's report.
import { readdirSync, readFileSync } from "node:fs";
/** Kernel clock ticks per second (USER_HZ): 100 on mainstream Linux builds. */
const clockTicks = 100;

export interface ProcSample {
  cpuSeconds: number;
  rssBytes: number;
  /**
   * Run-queue time (/proc/PID/task/TID/schedstat: runnable, not running), seconds: of each of the
   * process's threads by thread id (a JVM's pool threads come and go: an interval counts the
   * threads its second sample finds), and of its main thread alone (a Node.js process's
   * JavaScript), with the main thread's time on a core. Undefined where the kernel keeps no
   * schedstat.
   */
  sched?: { waitSeconds: Map<string, number>; main: { cpuSeconds: number; waitSeconds: number } };
  /** For a group of processes: each one's own sample, by pid. */
  parts?: Map<number, ProcSample>;
}

export function sample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const rssPages = Number(fields[21]);
    const sched = sampleSched(pid);
    return { cpuSeconds: ticks / clockTicks, rssBytes: rssPages * 4096, ...(sched === undefined ? {} : { sched }) };
  } catch {
    return undefined;
  }
}

/** A thread's time on a core and in the run queue, seconds (the first two fields of its schedstat, ns). */
function threadSched(pid: number, tid: string): { cpuSeconds: number; waitSeconds: number } | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(/\s+/).map(Number);
    return run === undefined || wait === undefined || Number.isNaN(run) || Number.isNaN(wait) ? undefined : { cpuSeconds: run / 1e9, waitSeconds: wait / 1e9 };
  } catch {
    return undefined;
  }
}

function sampleSched(pid: number): ProcSample["sched"] {
  let main: { cpuSeconds: number; waitSeconds: number } | undefined;
  const waitSeconds = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const t = threadSched(pid, tid);
      if (t === undefined) continue;
      waitSeconds.set(tid, t.waitSeconds);
      if (tid === String(pid)) main = t;
    }
  } catch {
    return undefined;
  }
  return main === undefined ? undefined : { waitSeconds, main };
}

/** The machine's CPU time over all cores since boot, in seconds (the first line of /proc/stat). */
export interface MachineSample {
  /** user, nice, system, irq and softirq. */
  busy: number;
  /** Time a virtual machine's vCPUs were runnable but the hypervisor ran something else. */
  steal: number;
  /** busy, steal, idle and iowait. */
  total: number;
}

export function sampleMachine(): MachineSample | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = user + nice + system + irq + softirq;
    return { busy: busy / clockTicks, steal: steal / clockTicks, total: (busy + steal + idle + iowait) / clockTicks };
  } catch {
    return undefined;
  }
}

/** Every named process at one moment, and the machine. */
export interface Snapshot {
  processes: Record<string, ProcSample | undefined>;
  machine: MachineSample | undefined;
}

/** PostgreSQL runs a process per connection: "postgres" in a snapshot is all of them together. */
export const POSTGRES = -1;

/** The processes of the postgres user now (the server and its backends). */
function postgresPids(): number[] {
  let uid: string | undefined;
  try {
    uid = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("postgres:"))?.split(":")[2];
  } catch {
    return [];
  }
  if (uid === undefined) return [];
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, "utf8"))?.[1] === uid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function sampleGroup(pids: number[]): ProcSample | undefined {
  const parts = new Map<number, ProcSample>();
  for (const pid of pids) {
    const s = sample(pid);
    if (s !== undefined) parts.set(pid, s);
  }
  const all = [...parts.values()];
  return all.length === 0 ? undefined : { cpuSeconds: all.reduce((n, s) => n + s.cpuSeconds, 0), rssBytes: all.reduce((n, s) => n + s.rssBytes, 0), parts };
}

/** CPU seconds between two samples; of a group, summed over its processes (one that started meanwhile counts from 0; one that ended is not counted). */
function cpuBetween(b: ProcSample, a: ProcSample): number {
  if (a.parts === undefined || b.parts === undefined) return a.cpuSeconds - b.cpuSeconds;
  let sum = 0;
  for (const [pid, s] of a.parts) sum += s.cpuSeconds - (b.parts.get(pid)?.cpuSeconds ?? 0);
  return sum;
}

/** A sample of every named process (POSTGRES: the postgres user's processes together) and of the machine. */
export const sampleAll = (pids: Record<string, number>): Snapshot => ({
  processes: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid === POSTGRES ? sampleGroup(postgresPids()) : sample(pid)])),
  machine: sampleMachine(),
});

/**
 * How long a process's threads waited for a core over an interval, in percent of the interval
 * (runnable, not running; summed over threads, so a process can pass 100): on a machine whose
 * cores are all taken, what each hop of a message waits besides its own work. The main thread's
 * share is a Node.js process's JavaScript, which runs one thing at a time.
 */
export interface CoreWait {
  waitPercent: number;
  main: { cpuPercent: number; waitPercent: number };
}

export interface ProcessUsage {
  cpuPercent: number;
  cpuSeconds: number;
  rssMB: number;
  coreWait?: CoreWait;
}

const percentOf = (x: number, seconds: number) => Math.round((x / seconds) * 1000) / 10;

/** A single process's core waits between two samples (none for a group, or without schedstat, or across a restart). */
function coreWaitBetween(b: ProcSample, a: ProcSample, seconds: number): CoreWait | undefined {
  if (a.sched === undefined || b.sched === undefined || a.sched.main.cpuSeconds < b.sched.main.cpuSeconds) return undefined;
  // A thread that ended in the interval takes its waits with it (they go uncounted: a sum over all
  // threads could fall and read as a negative wait); one that started (or reuses an ended one's id)
  // counts from zero.
  let waited = 0;
  for (const [tid, w] of a.sched.waitSeconds) {
    const before = b.sched.waitSeconds.get(tid) ?? 0;
    waited += w >= before ? w - before : w;
  }
  return {
    waitPercent: percentOf(waited, seconds),
    main: { cpuPercent: percentOf(a.sched.main.cpuSeconds - b.sched.main.cpuSeconds, seconds), waitPercent: percentOf(a.sched.main.waitSeconds - b.sched.main.waitSeconds, seconds) },
  };
}

/** CPU (percent of one core), RSS and core waits of each process between two snapshots `seconds` apart. */
export function usage(before: Snapshot, after: Snapshot, seconds: number): Record<string, ProcessUsage> {
  const out: Record<string, ProcessUsage> = {};
  for (const [name, a] of Object.entries(after.processes)) {
    const b = before.processes[name];
    if (a === undefined || b === undefined) continue;
    const cpuSeconds = cpuBetween(b, a);
    const coreWait = coreWaitBetween(b, a, seconds);
    out[name] = { cpuPercent: percentOf(cpuSeconds, seconds), cpuSeconds, rssMB: Math.round(a.rssBytes / 1e5) / 10, ...(coreWait === undefined ? {} : { coreWait }) };
  }
  return out;
}

/** What a report keeps of each process's usage (`usage` without the raw seconds). */
export type ProcessReport = Omit<ProcessUsage, "cpuSeconds">;

export const processReports = (used: Record<string, ProcessUsage>): Record<string, ProcessReport> =>
  Object.fromEntries(Object.entries(used).map(([name, u]) => [name, { cpuPercent: u.cpuPercent, rssMB: u.rssMB, ...(u.coreWait === undefined ? {} : { coreWait: u.coreWait }) }]));

/** "  edge           cpu   35.4%  rss 256.5 MB  waited for a core 52.7% (main thread ran 31.8%, waited 39.6%)" */
export function processLine(name: string, p: ProcessReport): string {
  const w = p.coreWait;
  const wait = w === undefined ? "" : `  waited for a core ${w.waitPercent}% (main thread ran ${w.main.cpuPercent}%, waited ${w.main.waitPercent}%)`;
  return `  ${name.padEnd(14)} cpu ${String(p.cpuPercent).padStart(6)}%  rss ${p.rssMB} MB${wait}`;
}

/** CPU seconds of the processes `which` selects (all by default) in a `usage` reading. */
export const cpuSecondsOf = (used: Record<string, { cpuSeconds: number }>, which: (name: string) => boolean = () => true): number =>
  Object.entries(used)
    .filter(([name]) => which(name))
    .reduce((sum, [, u]) => sum + u.cpuSeconds, 0);

/** The machine's busy and stolen shares of all its cores' time over an interval, in percent. */
export interface MachineUsage {
  busyPercent: number;
  stealPercent: number;
}

/**
 * The machine between two snapshots: busy, and stolen by the hypervisor (on a shared virtual
 * machine, a run with much steal had less than the whole machine).
 */
export function machineUsage(before: Snapshot, after: Snapshot): MachineUsage | undefined {
  const [b, a] = [before.machine, after.machine];
  if (b === undefined || a === undefined || a.total <= b.total) return undefined;
  const total = a.total - b.total;
  const percent = (x: number) => Math.round((x / total) * 1000) / 10;
  return { busyPercent: percent(a.busy - b.busy), stealPercent: percent(a.steal - b.steal) };
}

/** "machine busy 88% steal 12% of all cores" for a report line. */
export const machineNote = (m: MachineUsage | undefined): string => (m === undefined ? "machine not measured" : `machine busy ${m.busyPercent}% steal ${m.stealPercent}% of all cores`);

/** Processes to account: the mesh's, the infrastructure's (pid files), and this generator. */
export function processPids(mesh: { name: string; instance: number; child: { pid?: number | undefined } }[]): Record<string, number> {
  const pids: Record<string, number> = { loadgen: process.pid };
  const oneProcess = new Set(mesh.map((m) => m.child)).size === 1;
  for (const p of mesh) if (p.child.pid !== undefined) pids[oneProcess ? "chat-embedded" : p.instance === 0 ? p.name : `${p.name}-${p.instance}`] = p.child.pid;
  try {
    for (const f of readdirSync("var/infra/run")) if (f.endsWith(".pid")) pids[f.replace(/\.pid$/, "")] = Number(readFileSync(`var/infra/run/${f}`, "utf8"));
    if (!oneProcess) pids["postgres"] = POSTGRES;
  } catch {
    // no local infrastructure (embedded mode)
  }
  return pids;
}
