// CPU time and memory of processes, read from /proc (Linux), for the benchmark's report.
import { readFileSync } from "node:fs";
/** Kernel clock ticks per second (USER_HZ): 100 on mainstream Linux builds. */
const clockTicks = 100;

export interface ProcSample {
  cpuSeconds: number;
  rssBytes: number;
}

export function sample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const rssPages = Number(fields[21]);
    return { cpuSeconds: ticks / clockTicks, rssBytes: rssPages * 4096 };
  } catch {
    return undefined;
  }
}
