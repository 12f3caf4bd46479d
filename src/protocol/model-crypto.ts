import * as crypto from 'crypto';
import * as fs from 'fs';
import { ModelshipError } from '../util/errors';
import { SERVE_SETTINGS } from './serve-settings';

/**
 * Encrypted model at rest: AES-256-GCM. File layout: "MSENC1\n" magic, 12-byte IV, 16-byte tag, ciphertext.
 * The key (32 bytes, hex or base64) comes from an environment variable or a mounted file, never from the image.
 */
const MAGIC = Buffer.from('MSENC1\n', 'latin1');

export function isEncrypted(bytes: Uint8Array): boolean {
  return bytes.length > MAGIC.length && Buffer.from(bytes.subarray(0, MAGIC.length)).equals(MAGIC);
}

export function parseKey(text: string, source: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else {
    const b = Buffer.from(t, 'base64');
    if (b.length === 32) key = b;
  }
  if (!key) throw new ModelshipError('input', `the model key from ${source} is not 32 bytes (64 hex digits or base64)`);
  return key;
}

/** The key from `envName` or, when that is unset, from the file `keyFile`. */
export function loadKey(env: NodeJS.ProcessEnv, envName: string, keyFile: string | undefined): Buffer | undefined {
  const fromEnv = env[envName];
  if (fromEnv) return parseKey(fromEnv, `$${envName}`);
  if (keyFile && fs.existsSync(keyFile)) return parseKey(fs.readFileSync(keyFile, 'utf8'), keyFile);
  return undefined;
}

export function encryptModel(plain: Uint8Array, key: Buffer): Buffer {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([MAGIC, iv, c.getAuthTag(), body]);
}

export function decryptModel(bytes: Uint8Array, key: Buffer | undefined, file: string): Buffer {
  if (!key)
    throw new ModelshipError('input', `the model is encrypted but no key was given (set ${SERVE_SETTINGS.modelKey.env} or mount the key file)`, { file });
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const iv = b.subarray(MAGIC.length, MAGIC.length + 12);
  const tag = b.subarray(MAGIC.length + 12, MAGIC.length + 28);
  const d = crypto.createDecipheriv('aes-256-gcm', key, iv);
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(b.subarray(MAGIC.length + 28)), d.final()]);
  } catch {
    throw new ModelshipError('input', 'cannot decrypt the model: wrong key or corrupted file (AES-256-GCM authentication failed)', { file });
  }
}
