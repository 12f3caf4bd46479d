/**
 * The dynamic loader's view of a Linux system: `ldconfig -p`'s listing and the libraries no image ships. Read by the
 * image stage's base image check (src/image/basecheck.ts) and by the serving runtime when it names why the CUDA
 * provider failed to load (src/serve/execution-provider.ts).
 */

/**
 * NEEDED libraries that a base image does not (and should not) contain: the CUDA driver library comes from the host,
 * mounted into the container by the NVIDIA container toolkit at run time (its version must match the host's kernel
 * module, so images never ship it). Only these are exempt; keep this list short and explained.
 */
export const RUNTIME_PROVIDED_LIBS: readonly string[] = ['libcuda.so.1'];

/** One entry of `ldconfig -p`: `\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.13`. */
export interface LdconfigEntry {
  name: string;
  /** the parenthesised flags, split on commas: ['libc6', 'x86-64'], ['libc6'] (i386), ['libc6', 'AArch64'] … */
  flags: string[];
  path: string;
}

/** Parse `ldconfig -p` output; the header line ("N libs found in cache …") and anything unrecognised are skipped. */
export function parseLdconfigListing(text: string): LdconfigEntry[] {
  const out: LdconfigEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    out.push({
      name: m[1],
      flags: m[2]
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean),
      path: m[3],
    });
  }
  return out;
}

/**
 * The flag ldconfig prints for libraries of an ELF machine (glibc's ldconfig: `x86-64`, `AArch64`, …). undefined
 * for a machine this table does not know: then any entry of the name is accepted.
 */
export function ldconfigArchFlag(machine: number): string | undefined {
  return ({ 62: 'x86-64', 183: 'AArch64', 243: 'RISC-V' } as Record<number, string>)[machine];
}
