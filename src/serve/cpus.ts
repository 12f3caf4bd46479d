import * as fs from 'fs';
import * as os from 'os';

export interface CpuBudget {
  /** whole CPUs this process may keep busy (≥ 1) */
  cpus: number;
  /** where the figure comes from, for the log */
  source: string;
}

/** A file's text, or undefined when it cannot be read (a cgroup file that this kernel does not have). */
export type Read = (file: string) => string | undefined;

export const readFile: Read = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * The CPUs a server may use: the smaller of the CPU affinity mask (os.availableParallelism) and the container's
 * CFS quota (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded down, at least 1.
 * A pod limited to 400m CPU on a 64-core node gets 1, not 64: more threads than the quota only get throttled.
 * Inside a container the cgroup files at the mount root are the container's own.
 */
export function cpuBudget(read: Read = readFile, parallelism: number = os.availableParallelism()): CpuBudget {
  let quota: number | undefined;
  let where = '';
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2 && v2[0] !== 'max' && Number(v2[0]) > 0 && Number(v2[1]) > 0) {
    quota = Number(v2[0]) / Number(v2[1]);
    where = 'cgroup v2 cpu.max';
  } else if (!v2) {
    for (const dir of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) {
      const q = Number(read(`${dir}/cpu.cfs_quota_us`)?.trim());
      const p = Number(read(`${dir}/cpu.cfs_period_us`)?.trim());
      if (q > 0 && p > 0) {
        quota = q / p;
        where = 'cgroup v1 cpu.cfs_quota_us';
        break;
      }
    }
  }
  if (quota !== undefined && quota < parallelism) {
    return { cpus: Math.max(1, Math.floor(quota)), source: `${where}: ${+quota.toFixed(2)} CPU` };
  }
  return { cpus: Math.max(1, parallelism), source: `${parallelism} CPUs available` };
}
