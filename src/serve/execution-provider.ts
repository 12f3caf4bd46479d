import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import type * as Ort from 'onnxruntime-node';
import { ModelshipError } from '../util/errors';
import { readElfFile } from '../util/elf';
import { ortLibDir } from '../util/ort';
import { parseLdconfigListing, RUNTIME_PROVIDED_LIBS } from '../util/ldconfig';
import { SERVE_SETTINGS, settingLabel } from '../protocol/serve-settings';

/**
 * Which execution provider the server runs on, and what happens when it cannot. `cpu`; `cuda` (strict: the server
 * refuses to start without the CUDA provider, naming the cause); `cuda,cpu` (CUDA, else CPU — only when asked for,
 * and then stated in the log, in the model metadata and as a metric label).
 */
export interface ProviderRequest {
  /** as given: cpu | cuda | cuda,cpu */
  requested: string;
  wanted: 'cpu' | 'cuda';
  fallback: boolean;
}

export const PROVIDER_CHOICES = ['cpu', 'cuda', 'cuda,cpu'] as const;

export function parseProvider(raw: string, field = 'provider'): ProviderRequest {
  const v = raw.trim().toLowerCase().replace(/\s+/g, '');
  if (!(PROVIDER_CHOICES as readonly string[]).includes(v)) {
    throw new ModelshipError(
      'input',
      `${settingLabel(SERVE_SETTINGS.provider)} must be one of ${PROVIDER_CHOICES.join(', ')} (cuda,cpu allows a fallback to the CPU), got "${raw}"`,
      { field },
    );
  }
  return { requested: v, wanted: v === 'cpu' ? 'cpu' : 'cuda', fallback: v === 'cuda,cpu' };
}

export interface ProviderOutcome {
  session: Ort.InferenceSession;
  provider: 'cpu' | 'cuda';
  /** why the CUDA provider could not be used, when the server fell back to the CPU */
  fallbackReason?: string;
}

/** The provider libraries ONNX Runtime loads for CUDA, next to libonnxruntime.so.1. */
export const CUDA_PROVIDER_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/**
 * Create the session on the requested provider. Strict `cuda` throws (the server exits non-zero) with the cause;
 * `cuda,cpu` falls back and reports why.
 */
export async function createSession(
  ort: typeof Ort,
  bytes: Uint8Array,
  options: (providers: string[]) => Ort.InferenceSession.SessionOptions,
  req: ProviderRequest,
): Promise<ProviderOutcome> {
  if (req.wanted === 'cpu') return { session: await ort.InferenceSession.create(bytes, options(['cpu'])), provider: 'cpu' };
  try {
    return { session: await ort.InferenceSession.create(bytes, options(['cuda'])), provider: 'cuda' };
  } catch (e) {
    const cause = diagnoseCudaFailure((e as Error).message, ortLibDir());
    if (!req.fallback)
      throw new ModelshipError(
        'io',
        `the CUDA execution provider cannot be created: ${cause} (${SERVE_SETTINGS.provider.env}=cuda allows no fallback; cuda,cpu would serve on the CPU)`,
        { field: 'provider' },
      );
    return { session: await ort.InferenceSession.create(bytes, options(['cpu'])), provider: 'cpu', fallbackReason: cause };
  }
}

/**
 * Name the cause of a failed CUDA provider from ONNX Runtime's message and the libraries on disk: a missing provider
 * library (an image built without gpu: true), a library the provider needs that the image lacks, no driver library
 * (run without the NVIDIA runtime), no device, a driver too old for the CUDA runtime.
 */
export function diagnoseCudaFailure(message: string, libDir: string, resolve: (lib: string, from: string) => boolean = defaultResolver()): string {
  const cuda = /CUDA failure (\d+): ([^;\n]+)/.exec(message);
  if (cuda) {
    const [code, text] = [Number(cuda[1]), `CUDA failure ${cuda[1]}: ${cuda[2].trim()}`];
    if (code === 100) return `no CUDA device (${text}): run the container with --gpus or on a node with nvidia.com/gpu`;
    if (code === 35) return `the NVIDIA driver is too old for the CUDA runtime (${text}): CUDA 13 needs driver 580 or newer`;
    if (code === 34) return `the NVIDIA driver library is a stub (${text}): run with the NVIDIA container runtime`;
    return text;
  }
  for (const lib of CUDA_PROVIDER_LIBS) {
    if (!fs.existsSync(path.join(libDir, lib)))
      return `${lib} is missing from ${libDir}: the image was built without the CUDA provider (build it with gpu: true)`;
  }
  const missing: string[] = [];
  for (const lib of CUDA_PROVIDER_LIBS) {
    const file = path.join(libDir, lib);
    let needed: string[];
    try {
      needed = readElfFile(file).needed;
    } catch (e) {
      return `${file} is unreadable: ${(e as Error).message}`;
    }
    for (const n of needed) if (!fs.existsSync(path.join(libDir, n)) && !resolve(n, file)) missing.push(`${n} (needed by ${lib})`);
  }
  const driver = missing.filter((m) => RUNTIME_PROVIDED_LIBS.some((d) => m.startsWith(`${d} `)));
  const other = missing.filter((m) => !driver.includes(m));
  if (other.length) return `missing librar${other.length === 1 ? 'y' : 'ies'} ${other.join(', ')}: the base image lacks the CUDA 13 / cuDNN 9 runtime`;
  if (driver.length) return `missing driver library ${driver.join(', ')}: no NVIDIA driver is mounted (run with --gpus / the NVIDIA container toolkit)`;
  return message.split('\n')[0].trim() || 'unknown error';
}

/** Is `lib` found by the dynamic loader: LD_LIBRARY_PATH, the ldconfig cache, the default directories? */
function defaultResolver(): (lib: string) => boolean {
  let cache: Set<string> | undefined;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/lib',
    '/usr/lib',
    '/lib64',
    '/usr/lib64',
    '/lib/x86_64-linux-gnu',
    '/usr/lib/x86_64-linux-gnu',
  ];
  return (lib) => {
    if (dirs.some((d) => fs.existsSync(path.join(d, lib)))) return true;
    if (!cache) {
      cache = new Set();
      for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
        try {
          const out = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
          // the listing as the image stage's base image check reads it
          for (const e of parseLdconfigListing(out)) if (e.flags.includes('x86-64')) cache.add(e.name);
          break;
        } catch {
          /* try the next */
        }
      }
    }
    return cache.has(lib);
  };
}
