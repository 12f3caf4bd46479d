import * as path from 'path';
import { readElfFile } from '../util/elf';
import { ModelshipError } from '../util/errors';
import { runProcess } from '../util/proc';
import { type LdconfigEntry, ldconfigArchFlag, parseLdconfigListing, RUNTIME_PROVIDED_LIBS } from '../util/ldconfig';

/**
 * Before building a GPU image: can the base image load ONNX Runtime's GPU provider libraries? The providers are
 * placed in one directory of the image next to libonnxruntime.so.1; every other library they NEED must come from the
 * base image's dynamic loader cache (what `ldconfig -p` lists), except the driver's, which the NVIDIA container
 * toolkit mounts at run time. Finding out now costs one `docker run` of the base image (no GPU needed); finding out
 * in the cluster costs a rollout that falls back to the CPU or crash-loops.
 *
 * The pure part (parse the listing, compute what is missing) is separate from the effect (run ldconfig in the base
 * image) so it can be tested without Docker.
 */

/** The default base image of a GPU build: CUDA 13 and cuDNN 9 runtime, pinned by digest. */
export const DEFAULT_GPU_BASE_IMAGE = 'nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04@sha256:14d94b039cb94bbd5da559f303b46bc4b0d5d6c24ab1a9d7b186e566ed3400dc';

/**
 * Libraries a shipped library loads with dlopen at run time rather than through a NEEDED entry, so its ELF file does
 * not name them: ONNX Runtime's CUDA provider loads cuDNN 9 (its convolutions, GoogLeNet's included, run there).
 * Checked like NEEDED entries: a base image without them builds, starts, and fails on the first convolution.
 */
export const LOADED_AT_RUN_TIME: Readonly<Record<string, readonly string[]>> = { 'libonnxruntime_providers_cuda.so': ['libcudnn.so.9'] };

/** ONNX Runtime's own library, placed next to the providers in the image (the server's onnxruntime-node binding). */
export const ORT_LIBRARY = 'libonnxruntime.so.1';

/** What the check needs to know of one library to be shipped (from its ELF dynamic section). */
export interface ShippedLib {
  /** the file name it will have in the image */
  file: string;
  soname: string;
  machine: number;
  needed: string[];
}

export interface MissingLib {
  name: string;
  /** file names of the shipped libraries that NEED it */
  neededBy: string[];
  /** architectures (ldconfig flags) it is present for, when present only for others (e.g. an i386 copy) */
  otherArch: string[];
}

export interface BaseCheckPlan {
  /** library name → its path in the base image */
  resolved: Record<string, string>;
  /** NEEDED names exempt from the check (RUNTIME_PROVIDED_LIBS that some library needs) */
  exempt: string[];
  /** names shipped together with the libraries (their own file names / sonames, libonnxruntime.so.1) that were needed */
  bundled: string[];
  missing: MissingLib[];
}

/** Resolve every NEEDED entry of `libs` against the shipped set, the exemptions and the base image's listing. */
export function planBaseImageCheck(libs: ShippedLib[], listing: LdconfigEntry[]): BaseCheckPlan {
  const shipped = new Set<string>([ORT_LIBRARY]);
  for (const l of libs) {
    shipped.add(l.file);
    if (l.soname) shipped.add(l.soname);
  }
  const plan: BaseCheckPlan = { resolved: {}, exempt: [], bundled: [], missing: [] };
  const missing = new Map<string, MissingLib>();
  for (const lib of libs) {
    const arch = ldconfigArchFlag(lib.machine);
    for (const name of lib.needed) {
      if (shipped.has(name)) {
        if (!plan.bundled.includes(name)) plan.bundled.push(name);
        continue;
      }
      if (RUNTIME_PROVIDED_LIBS.includes(name)) {
        if (!plan.exempt.includes(name)) plan.exempt.push(name);
        continue;
      }
      const entries = listing.filter((e) => e.name === name);
      const match = entries.find((e) => arch === undefined || e.flags.includes(arch));
      if (match) {
        plan.resolved[name] ??= match.path;
        continue;
      }
      let m = missing.get(name);
      if (!m) {
        // an entry without an architecture flag ("(libc6)") is a 32-bit x86 one
        const archOf = (e: LdconfigEntry) => e.flags.filter((f) => f !== 'libc6' && !/^(OS ABI|hwcap)/.test(f)).join(',') || 'i386';
        const otherArch = [...new Set(entries.map(archOf))];
        m = { name, neededBy: [], otherArch };
        missing.set(name, m);
        plan.missing.push(m);
      }
      if (!m.neededBy.includes(lib.file)) m.neededBy.push(lib.file);
    }
  }
  return plan;
}

/** The error message for a plan with missing libraries: each missing name, who needs it, and the base image. */
export function describeMissing(baseImage: string, missing: MissingLib[]): string {
  const failing = [...new Set(missing.flatMap((m) => m.neededBy))];
  // group names needed by the same libraries: "a, b (needed by x.so); c (needed by x.so, y.so)"
  const groups = new Map<string, MissingLib[]>();
  for (const m of missing) {
    const key = m.neededBy.join(', ');
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const parts = [...groups].map(([by, ms]) => {
    const names = ms.map((m) => (m.otherArch.length ? `${m.name} (only for ${m.otherArch.join(', ')})` : m.name)).join(', ');
    return `${names} (needed by ${by})`;
  });
  return (
    `base image "${baseImage}" cannot load ${failing.join(', ')}: ${parts.join('; ')} not found by ldconfig -p in the image; ` +
    `use a base image with CUDA 13 and cuDNN 9, e.g. the default ${DEFAULT_GPU_BASE_IMAGE}`
  );
}

/** The last lines of docker's stderr, without its "Run 'docker run --help'" boilerplate. */
function stderrTail(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Run 'docker run --help'/.test(l));
  const tail = lines.slice(-4).join(' | ');
  return tail.length > 800 ? `…${tail.slice(-800)}` : tail || '(no output)';
}

/** The effect: `ldconfig -p` inside the base image (no GPU, no network). Tries /sbin/ldconfig when not on PATH. */
export async function listBaseImageLibraries(baseImage: string, env: NodeJS.ProcessEnv = process.env): Promise<LdconfigEntry[]> {
  const run = (ldconfig: string) => runProcess('docker', ['run', '--rm', '--network', 'none', '--entrypoint', ldconfig, baseImage, '-p'], { env });
  let r = await run('ldconfig');
  // docker run exits 127 (command not found) / 126 (not executable) when the entrypoint cannot be started
  if (r.code === 127 || r.code === 126) r = await run('/sbin/ldconfig');
  if (r.code !== 0) {
    const hint = r.code === 127 || r.code === 126 ? ' (no ldconfig on its PATH nor in /sbin: a glibc-based image is needed)' : '';
    throw new ModelshipError(
      'input',
      `cannot run ldconfig -p in base image "${baseImage}" to check that it can load the GPU libraries (exit ${r.code})${hint}: ${stderrTail(r.stderr)}`,
      {
        field: 'base-image',
      },
    );
  }
  return parseLdconfigListing(r.stdout);
}

/**
 * Check that `baseImage` can load `libs` (absolute paths of .so files placed in one directory of the image next to
 * libonnxruntime.so.1). Returns the base image's path of each library it resolves and the exempt names; throws a
 * ModelshipError('input') naming each missing library, the provider that needs it and the base image. `env` is the
 * docker environment (a DOCKER_CONFIG logged in to a private registry).
 */
export async function checkBaseImageLoads(
  baseImage: string,
  libs: string[],
  log: { info(l: string): void },
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ resolved: Record<string, string>; exempt: string[] }> {
  const shipped: ShippedLib[] = libs.map((file) => {
    const elf = readElfFile(file);
    const name = path.basename(file);
    return { file: name, soname: elf.soname, machine: elf.machine, needed: [...elf.needed, ...(LOADED_AT_RUN_TIME[name] ?? [])] };
  });
  log.info(`checking that base image "${baseImage}" can load ${shipped.map((l) => l.file).join(', ')} (ldconfig -p in the image)`);
  const listing = await listBaseImageLibraries(baseImage, env);
  const plan = planBaseImageCheck(shipped, listing);
  if (plan.missing.length) throw new ModelshipError('input', describeMissing(baseImage, plan.missing), { field: 'base-image' });
  const found = Object.entries(plan.resolved).map(([n, p]) => `${n} (${p})`);
  log.info(`base image "${baseImage}" provides ${found.join(', ') || 'nothing needed'}`);
  if (plan.exempt.length) log.info(`${plan.exempt.join(', ')}: provided at run time by the NVIDIA container toolkit, not checked in the image`);
  return { resolved: plan.resolved, exempt: plan.exempt };
}
