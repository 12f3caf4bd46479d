import * as fs from 'fs';
import { ModelshipError } from './errors';

/**
 * What a dynamic loader needs to know about an ELF file: its machine, its program interpreter (which tells a
 * glibc binary from a musl one) and its dynamic section (NEEDED libraries, SONAME, RUNPATH). A small reader of the
 * ELF64 little-endian layout (the System V gABI): program headers for PT_INTERP and PT_DYNAMIC, then DT_* entries
 * whose strings live in the dynamic string table (located through the load segments, as the loader does).
 */
export interface ElfInfo {
  /** e_machine: 62 is x86-64, 183 aarch64 */
  machine: number;
  machineName: string;
  /** ET_EXEC 2, ET_DYN 3 */
  type: number;
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2 (glibc) or /lib/ld-musl-x86_64.so.1 (musl); '' for a library */
  interpreter: string;
  needed: string[];
  soname: string;
  runpath: string[];
}

const MACHINES: Record<number, string> = { 3: 'x86', 40: 'arm', 62: 'x86-64', 183: 'aarch64', 243: 'riscv' };
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** Parse an ELF file's header, interpreter and dynamic section. `what` names the file in errors. */
export function readElf(bytes: Uint8Array, what: string): ElfInfo {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (m: string): never => {
    throw new ModelshipError('binary', `${what}: not a usable ELF file: ${m}`, { file: what });
  };
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) bad('no ELF magic');
  if (b[4] !== 2) bad('not a 64-bit ELF file');
  if (b[5] !== 1) bad('not little-endian');
  const type = b.readUInt16LE(16);
  const machine = b.readUInt16LE(18);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  if (phoff + phentsize * phnum > b.length) bad('program headers past the end of the file (truncated?)');
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let interpreter = '';
  let dyn: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const ptype = b.readUInt32LE(p);
    const offset = Number(b.readBigUInt64LE(p + 8));
    const vaddr = Number(b.readBigUInt64LE(p + 16));
    const filesz = Number(b.readBigUInt64LE(p + 32));
    if (ptype === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (ptype === PT_INTERP) {
      if (offset + filesz > b.length) bad('PT_INTERP past the end of the file');
      interpreter = b
        .subarray(offset, offset + filesz)
        .toString('latin1')
        .replace(/\0.*$/s, '');
    } else if (ptype === PT_DYNAMIC) dyn = { offset, size: filesz };
  }
  const info: ElfInfo = { machine, machineName: MACHINES[machine] ?? `machine ${machine}`, type, interpreter, needed: [], soname: '', runpath: [] };
  if (!dyn) return info; // a static executable
  if (dyn.offset + dyn.size > b.length) bad('dynamic section past the end of the file (truncated?)');
  const entries: { tag: number; val: number }[] = [];
  for (let p = dyn.offset; p + 16 <= dyn.offset + dyn.size; p += 16) {
    const tag = Number(b.readBigInt64LE(p));
    if (tag === DT_NULL) break;
    entries.push({ tag, val: Number(b.readBigUInt64LE(p + 8)) });
  }
  const strtabAddr = entries.find((e) => e.tag === DT_STRTAB)?.val;
  if (strtabAddr === undefined) bad('dynamic section without a string table');
  // DT_STRTAB is a virtual address: map it to a file offset through the load segment that holds it
  const seg = loads.find((l) => strtabAddr! >= l.vaddr && strtabAddr! < l.vaddr + l.filesz);
  if (!seg) bad('dynamic string table outside every load segment');
  const strtab = strtabAddr! - seg!.vaddr + seg!.offset;
  const str = (off: number): string => {
    const start = strtab + off;
    if (start >= b.length) bad('string past the end of the file (truncated?)');
    const end = b.indexOf(0, start);
    return b.subarray(start, end < 0 ? b.length : end).toString('utf8');
  };
  for (const e of entries) {
    if (e.tag === DT_NEEDED) info.needed.push(str(e.val));
    else if (e.tag === DT_SONAME) info.soname = str(e.val);
    else if (e.tag === DT_RUNPATH || e.tag === DT_RPATH) info.runpath.push(...str(e.val).split(':').filter(Boolean));
  }
  return info;
}

export function readElfFile(file: string): ElfInfo {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new ModelshipError('io', `cannot read ${file}: ${(e as Error).message}`, { file });
  }
  return readElf(bytes, file);
}

/** The C library an executable was linked for, from its interpreter: glibc, musl, or '' (static / unknown). */
export function libcOf(info: ElfInfo): 'glibc' | 'musl' | '' {
  if (/ld-musl-/.test(info.interpreter)) return 'musl';
  if (/ld-linux[-.]/.test(info.interpreter)) return 'glibc';
  return '';
}
