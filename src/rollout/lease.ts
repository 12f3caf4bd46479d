import { ModelshipError } from '../util/errors';
import type { Kube } from './kube';
import { apiError, MicroTime } from './kube-errors';

/**
 * One deploy at a time per app and namespace: a coordination.k8s.io/v1 Lease `modelship-<app>`. A second deploy
 * waits (bounded by lock-timeout) or fails naming the holder; a lease whose holder stopped renewing it is taken
 * over once its duration has passed (a dead run cannot block deploys for ever). Updates are optimistic
 * (resourceVersion), so two runs can never both believe they hold it.
 */
export interface LeaseState {
  holder: string;
  renewTime?: string;
  durationS: number;
  resourceVersion?: string;
}

export const leaseName = (app: string) => `modelship-${app}`;

/** Pure: is a lease held by someone other than `me` and still valid at `now`? */
export function heldByOther(l: LeaseState | undefined, me: string, now: number): boolean {
  if (!l || !l.holder || l.holder === me) return false;
  const renewed = l.renewTime ? Date.parse(l.renewTime) : 0;
  return renewed + l.durationS * 1000 > now;
}

/** The Lease as the deploy lock writes it (taken or renewed at `now`), as data. */
export function leaseObject(namespace: string, app: string, holder: string, durationS: number, now: Date, resourceVersion?: string) {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: leaseName(app), namespace, resourceVersion, labels: { 'app.kubernetes.io/managed-by': 'modelship', 'app.kubernetes.io/name': app } },
    spec: { holderIdentity: holder, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now },
  };
}

export class DeployLock {
  private timer?: NodeJS.Timeout;
  private resourceVersion?: string;
  /** set when the lease was taken over from a holder that stopped renewing it */
  takenOverFrom?: string;

  constructor(
    private readonly kube: Kube,
    readonly namespace: string,
    readonly app: string,
    readonly holder: string,
    readonly durationS: number,
  ) {}

  private async read(): Promise<LeaseState | undefined> {
    try {
      const l = await this.kube.coordination.readNamespacedLease({ name: leaseName(this.app), namespace: this.namespace });
      const renew = l.spec?.renewTime as unknown;
      return {
        holder: l.spec?.holderIdentity ?? '',
        renewTime: renew instanceof Date ? renew.toISOString() : (renew as string | undefined),
        durationS: l.spec?.leaseDurationSeconds ?? this.durationS,
        resourceVersion: l.metadata?.resourceVersion,
      };
    } catch (e) {
      if (apiError(e)?.code === 404) return undefined;
      throw e;
    }
  }

  private body(resourceVersion?: string) {
    return leaseObject(this.namespace, this.app, this.holder, this.durationS, new MicroTime(), resourceVersion);
  }

  /** Take the lease, waiting up to timeoutS for another holder; fails naming the holder. */
  async acquire(timeoutS: number, onWait?: (holder: string) => void): Promise<void> {
    const deadline = Date.now() + timeoutS * 1000;
    let told = false;
    for (;;) {
      const cur = await this.read();
      try {
        if (!cur) {
          const l = await this.kube.coordination.createNamespacedLease({ namespace: this.namespace, body: this.body() });
          this.resourceVersion = l.metadata?.resourceVersion;
          break;
        }
        if (!heldByOther(cur, this.holder, Date.now())) {
          if (cur.holder && cur.holder !== this.holder) this.takenOverFrom = cur.holder;
          const l = await this.kube.coordination.replaceNamespacedLease({
            name: leaseName(this.app),
            namespace: this.namespace,
            body: this.body(cur.resourceVersion),
          });
          this.resourceVersion = l.metadata?.resourceVersion;
          break;
        }
        if (!told) {
          onWait?.(cur.holder);
          told = true;
        }
      } catch (e) {
        const code = apiError(e)?.code;
        if (code !== 409)
          throw new ModelshipError(
            'cluster',
            `Kubernetes: taking the deploy lease ${this.namespace}/${leaseName(this.app)} failed: ${apiError(e)?.message ?? (e as Error).message}`,
          );
        // 409: another run created or renewed it between our read and write; look again
      }
      if (Date.now() >= deadline) {
        const c = await this.read();
        throw new ModelshipError(
          'cluster',
          `another deploy of "${this.app}" in namespace ${this.namespace} holds the lease ${leaseName(this.app)} (holder "${c?.holder}", renewed ${c?.renewTime}, duration ${c?.durationS} s); waited ${timeoutS} s (input "lock-timeout")`,
          { field: 'lock-timeout' },
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    // renew at a third of the duration, so a live run never looks dead
    this.timer = setInterval(() => void this.renew(), Math.max(1000, (this.durationS * 1000) / 3));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const l = await this.kube.coordination.replaceNamespacedLease({
        name: leaseName(this.app),
        namespace: this.namespace,
        body: this.body(this.resourceVersion),
      });
      this.resourceVersion = l.metadata?.resourceVersion;
    } catch {
      /* the next renewal or the release will tell */
    }
  }

  /** Give the lease back (only if we still hold it). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const cur = await this.read().catch(() => undefined);
    if (cur && cur.holder === this.holder)
      await this.kube.remove('coordination.k8s.io/v1', 'Lease', this.namespace, leaseName(this.app), cur.resourceVersion).catch(() => false);
  }
}

/** Who holds the deploy lease of `app` now ('' when nobody; undefined when it cannot be read). */
export async function leaseHolder(kube: Kube, namespace: string, app: string): Promise<string | undefined> {
  try {
    const l = await kube.coordination.readNamespacedLease({ name: leaseName(app), namespace });
    return l.spec?.holderIdentity ?? '';
  } catch (e) {
    return apiError(e)?.code === 404 ? '' : undefined;
  }
}

/** The post step: release a lease this run still holds (a cancelled run). */
export async function releaseIfHeld(kube: Kube, namespace: string, app: string, holder: string): Promise<boolean> {
  const lock = new DeployLock(kube, namespace, app, holder, 1);
  try {
    const l = await kube.coordination.readNamespacedLease({ name: leaseName(app), namespace });
    if (l.spec?.holderIdentity !== holder) return false;
  } catch {
    return false;
  }
  await lock.release();
  return true;
}
