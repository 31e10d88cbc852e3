// Temporary folders for tests (PGlite data, key files), removed when the test process exits: each
// test file runs in a process of its own, and a run of the whole suite would otherwise leave about
// a gigabyte of databases in the system's temporary folder.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

/** A new empty folder under the system's temporary folder, named `<prefix>-XXXXXX`. */
export function scratchDir(prefix: string): string {
  if (made.length === 0) process.once("exit", () => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  made.push(dir);
  return dir;
}
