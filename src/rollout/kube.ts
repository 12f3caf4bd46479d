import * as fs from 'fs';
import type * as https from 'https';
import * as k8s from '@kubernetes/client-node';
import { externalFailure, ModelshipError } from '../util/errors';
import { Transport } from '../shared/golden';
import { exchange } from '../util/http';
import type { K8sObject } from './manifests';
import { apiError } from './kube-errors';
import { parseWarnings, DryRunAnswer } from './admission';

import { FIELD_MANAGER } from './owner';
export { apiError, MicroTime } from './kube-errors';

/**
 * The one place that talks to Kubernetes, through @kubernetes/client-node. Objects travel as plain JSON
 * (K8sObject); server-side apply uses field manager `modelship`. Everything else in rollout takes a Kube.
 */

const plain = <T>(o: unknown): T => JSON.parse(JSON.stringify(o)) as T;

export class Kube {
  readonly kc: k8s.KubeConfig;
  private readonly objects: k8s.KubernetesObjectApi;
  readonly coordination: k8s.CoordinationV1Api;
  private readonly authz: k8s.AuthorizationV1Api;
  readonly server: string;
  /** discovery: the resources of each group version resourcePath was asked about */
  private readonly discovered = new Map<string, { name: string; kind: string; namespaced: boolean }[]>();

  private constructor(kc: k8s.KubeConfig) {
    this.kc = kc;
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    this.server = kc.getCurrentCluster()?.server ?? '';
  }

  /**
   * Load a kubeconfig: `source` is a file path or the kubeconfig's YAML itself (a secret in the action); empty
   * means the default ($KUBECONFIG, ~/.kube/config, in-cluster). An unreadable one fails naming the input.
   */
  static load(source: string): Kube {
    const kc = new k8s.KubeConfig();
    const bad = (why: string): never => {
      throw new ModelshipError('input', `input "kubeconfig": ${why}`, { field: 'kubeconfig' });
    };
    try {
      if (source === '') {
        // client-node falls back to http://localhost:8080 when it finds nothing: say so instead (in a workflow, an empty
        // kubeconfig is a secret that is not set or is misspelled)
        const home = process.env.HOME ?? '';
        if (!process.env.KUBECONFIG && !(home && fs.existsSync(`${home}/.kube/config`)) && !process.env.KUBERNETES_SERVICE_HOST) {
          return bad(
            'is empty, and there is no $KUBECONFIG, no ~/.kube/config and no in-cluster service account: give the kubeconfig (in a workflow, from a secret: is that secret set, and spelled as the caller passes it?)',
          );
        }
        kc.loadFromDefault();
      } else if (/\bapiVersion\s*:/.test(source) || /\bclusters\s*:/.test(source)) kc.loadFromString(source);
      else {
        let text: string;
        try {
          text = fs.readFileSync(source, 'utf8');
        } catch (e) {
          return bad(`cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        kc.loadFromString(text);
      }
    } catch (e) {
      if (e instanceof ModelshipError) throw e;
      return bad(
        `${source ? `${source.includes('\n') ? 'the given kubeconfig' : source}` : 'the default kubeconfig'} is not a usable kubeconfig: ${(e as Error).message}`,
      );
    }
    if (!kc.getCurrentCluster()) bad(`${source || 'the default kubeconfig'} has no current cluster (current-context "${kc.getCurrentContext()}")`);
    return new Kube(kc);
  }

  async get<T extends K8sObject = K8sObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return plain<T>(await this.objects.read({ apiVersion, kind, metadata: { name, namespace } }));
    } catch (e) {
      if (apiError(e)?.code === 404) return undefined;
      throw this.wrap(e, `read ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
    }
  }

  async list<T extends K8sObject = K8sObject>(
    apiVersion: string,
    kind: string,
    namespace: string,
    labelSelector?: string,
    fieldSelector?: string,
  ): Promise<T[]> {
    try {
      const l = await this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, fieldSelector, labelSelector);
      return plain<T[]>(l.items);
    } catch (e) {
      throw this.wrap(e, `list ${kind} in ${namespace}`);
    }
  }

  /**
   * Server-side apply under field manager `modelship`, taking over conflicting fields (force). `as`: another field
   * manager, or no force (a conflict is then an HTTP 409): the hand-over of replicas to an autoscaler (autoscale-writes.ts).
   */
  async apply<T extends K8sObject = K8sObject>(obj: K8sObject, dryRun = false, as: { fieldManager?: string; force?: boolean } = {}): Promise<T> {
    const manager = as.fieldManager ?? FIELD_MANAGER;
    try {
      return plain<T>(await this.objects.patch(obj, undefined, dryRun ? 'All' : undefined, manager, as.force ?? true, k8s.PatchStrategy.ServerSideApply));
    } catch (e) {
      throw this.wrap(e, `apply ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
    }
  }

  /**
   * A server-side dry run (dryRun=All) of writing `obj`: server-side apply as `apply` does, or a full PUT as a takeover
   * does (`replace`). The API server's answer with its Warning headers, which client-node does not hand back (Pod
   * Security's "would violate" for a pod template comes only there): a refusal is answered, not thrown.
   */
  async dryRunWrite(obj: K8sObject, how: 'apply' | 'replace' = 'apply'): Promise<DryRunAnswer> {
    const what = `dry run of ${how} ${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const path = `${await this.resourcePath(obj)}?${new URLSearchParams({ dryRun: 'All', fieldManager: FIELD_MANAGER, ...(how === 'apply' ? { force: 'true' } : {}) }).toString()}`;
    // JSON is YAML: server-side apply takes the object as application/apply-patch+yaml
    const headers = { 'content-type': how === 'apply' ? 'application/apply-patch+yaml' : 'application/json', accept: 'application/json' };
    let r: Awaited<ReturnType<Transport>>;
    try {
      r = await this.proxy('')(path, { method: how === 'apply' ? 'PATCH' : 'PUT', body: Buffer.from(JSON.stringify(obj)), headers, timeoutMs: 30_000 });
    } catch (e) {
      throw this.wrap(e, what);
    }
    let message = '';
    if (r.status < 200 || r.status > 299) {
      try {
        message = (JSON.parse(r.body.toString()) as { message?: string }).message ?? '';
      } catch {
        message = r.body.toString().slice(0, 300);
      }
    }
    return { status: r.status, warnings: parseWarnings(r.headers.warning), message };
  }

  /** The REST path of an object (its resource's plural name from discovery, cached per group version). */
  private async resourcePath(obj: K8sObject): Promise<string> {
    const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
    let resources = this.discovered.get(obj.apiVersion);
    if (!resources) {
      resources = (await this.getJson<{ resources: { name: string; kind: string; namespaced: boolean }[] }>(base)).resources.filter(
        (r) => !r.name.includes('/'),
      );
      this.discovered.set(obj.apiVersion, resources);
    }
    const r = resources.find((x) => x.kind === obj.kind);
    if (!r) throw new ModelshipError('cluster', `Kubernetes: the API server does not serve ${obj.kind} in ${obj.apiVersion}`);
    const ns = r.namespaced ? `/namespaces/${encodeURIComponent(obj.metadata.namespace ?? '')}` : '';
    return `${base}${ns}/${r.name}/${encodeURIComponent(obj.metadata.name)}`;
  }

  /** Whether the API server serves `kind` in `apiVersion` (discovery): for a custom resource, whether its CRD is installed. */
  async serves(apiVersion: string, kind: string): Promise<boolean> {
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let r: { status: number; body: Buffer };
    try {
      r = await this.proxy('')(base, { timeoutMs: 15_000 });
    } catch (e) {
      throw this.wrap(e, `GET ${base}`);
    }
    if (r.status === 404) return false;
    if (r.status !== 200) throw new ModelshipError('cluster', `Kubernetes: GET ${base} failed (HTTP ${r.status}): ${r.body.toString().slice(0, 200)}`);
    return (JSON.parse(r.body.toString()) as { resources: { kind: string }[] }).resources.some((x) => x.kind === kind);
  }

  async replace<T extends K8sObject = K8sObject>(obj: K8sObject, dryRun = false): Promise<T> {
    try {
      return plain<T>(await this.objects.replace(obj, undefined, dryRun ? 'All' : undefined, FIELD_MANAGER));
    } catch (e) {
      throw this.wrap(e, `replace ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
    }
  }

  async create<T extends K8sObject = K8sObject>(obj: K8sObject): Promise<T> {
    try {
      return plain<T>(await this.objects.create(obj, undefined, undefined, FIELD_MANAGER));
    } catch (e) {
      throw this.wrap(e, `create ${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`);
    }
  }

  /** Delete (foreground, so the pods go with a Deployment); false when it was not there. */
  async remove(apiVersion: string, kind: string, namespace: string, name: string, preconditionResourceVersion?: string): Promise<boolean> {
    try {
      await this.objects.delete(
        { apiVersion, kind, metadata: { name, namespace } },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
        preconditionResourceVersion ? { preconditions: { resourceVersion: preconditionResourceVersion } } : undefined,
      );
      return true;
    } catch (e) {
      if (apiError(e)?.code === 404) return false;
      throw this.wrap(e, `delete ${kind} ${namespace}/${name}`);
    }
  }

  /**
   * Every object in `namespace`, of every namespaced resource the API server lists (found by discovery, the preferred
   * version of each group), kind and apiVersion filled in. Events and metrics are not objects anyone made, and
   * Endpoints come with their Service: left out.
   * Fails (naming the path) where a list is refused or an API is unavailable: the caller cannot tell then.
   */
  async namespaceObjects(namespace: string): Promise<K8sObject[]> {
    const get = <T>(p: string) => this.getJson<T>(p);
    type Resources = { groupVersion: string; resources: { name: string; kind: string; namespaced: boolean; verbs: string[] }[] };
    const groups = (await get<{ groups: { name: string; preferredVersion: { groupVersion: string } }[] }>('/apis')).groups.filter(
      (g) => !/^(events|metrics)\.k8s\.io$/.test(g.name),
    );
    const lists = await Promise.all([get<Resources>('/api/v1'), ...groups.map((g) => get<Resources>(`/apis/${g.preferredVersion.groupVersion}`))]);
    const wanted = lists.flatMap((l) =>
      l.resources
        .filter(
          (r) => r.namespaced && !r.name.includes('/') && r.verbs.includes('list') && !(l.groupVersion === 'v1' && ['Event', 'Endpoints'].includes(r.kind)),
        )
        .map((r) => ({ ...r, groupVersion: l.groupVersion })),
    );
    const items = await Promise.all(
      wanted.map(async (r) => {
        const base = r.groupVersion === 'v1' ? '/api/v1' : `/apis/${r.groupVersion}`;
        const l = await get<{ items: K8sObject[] }>(`${base}/namespaces/${namespace}/${r.name}`);
        return l.items.map((o) => ({ ...o, apiVersion: r.groupVersion, kind: r.kind }));
      }),
    );
    return items.flat();
  }

  /** Events about one object, oldest first. */
  async events(namespace: string, name: string): Promise<{ type: string; reason: string; message: string; count: number }[]> {
    const items = await this.list<K8sObject & { type?: string; reason?: string; message?: string; count?: number; lastTimestamp?: string }>(
      'v1',
      'Event',
      namespace,
      undefined,
      `involvedObject.name=${name}`,
    );
    return items.map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '', count: e.count ?? 1 }));
  }

  /** The API server's version (GET /version, readable by every user). */
  serverVersion(): Promise<{ major: string; minor: string; gitVersion: string }> {
    return this.getJson('/version');
  }

  /** GET an API path as JSON; a refusal or an unreachable server is a ModelshipError naming the path. */
  private async getJson<T>(p: string): Promise<T> {
    let r: { status: number; body: Buffer };
    try {
      r = await this.proxy('')(p, { timeoutMs: 15_000 });
    } catch (e) {
      throw this.wrap(e, `GET ${p}`);
    }
    if (r.status !== 200) throw new ModelshipError('cluster', `Kubernetes: GET ${p} failed (HTTP ${r.status}): ${r.body.toString().slice(0, 200)}`);
    return JSON.parse(r.body.toString()) as T;
  }

  /** SelfSubjectAccessReview: may the kubeconfig's user do `verb` on `resource` (or `resource/subresource`: services/proxy)? */
  async canI(verb: string, resource: string, group = '', namespace?: string): Promise<boolean> {
    const [res, subresource] = resource.split('/');
    try {
      const r = await this.authz.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { verb, resource: res, subresource, group, namespace } } },
      });
      return r.status?.allowed === true;
    } catch (e) {
      throw this.wrap(e, `check permission to ${verb} ${resource}`);
    }
  }

  /** Who the kubeconfig's user is to the API server (a SelfSubjectReview, 1.28+), else the kubeconfig's user entry. */
  async whoAmI(): Promise<string> {
    try {
      const r = await this.kc
        .makeApiClient(k8s.AuthenticationV1Api)
        .createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
      if (r.status?.userInfo?.username) return r.status.userInfo.username;
    } catch {
      /* an older API server, or one that refuses it: the kubeconfig's name for the user */
    }
    return `kubeconfig user "${this.kc.getCurrentUser()?.name ?? ''}"`;
  }

  /** A Transport through the API server's service proxy: .../namespaces/NS/services/NAME:PORT/proxy/PATH. */
  serviceProxy(namespace: string, service: string, port: string): Transport {
    return this.proxy(`/api/v1/namespaces/${namespace}/services/${service}:${port}/proxy`);
  }

  /** A Transport to one pod through the API server's pod proxy: .../namespaces/NS/pods/NAME:PORT/proxy/PATH. */
  podProxy(namespace: string, pod: string, port: number): Transport {
    return this.proxy(`/api/v1/namespaces/${namespace}/pods/${pod}:${port}/proxy`);
  }

  /** The start of a pod's log (its first `limitBytes`), '' when it cannot be read. */
  async podLog(namespace: string, pod: string, limitBytes = 256 * 1024): Promise<string> {
    const r = await this.proxy(`/api/v1/namespaces/${namespace}/pods/${pod}/log`)(`?limitBytes=${limitBytes}`).catch(() => undefined);
    return r && r.status === 200 ? r.body.toString() : '';
  }

  private proxy(prefix: string): Transport {
    return async (p, opts = {}) => {
      const url = new URL(this.server.replace(/\/$/, '') + prefix + p);
      const ro: https.RequestOptions = {
        method: opts.method ?? (opts.body ? 'POST' : 'GET'),
        headers: { ...(opts.headers ?? {}) },
        timeout: opts.timeoutMs ?? 30_000,
      };
      await this.kc.applyToHTTPSOptions(ro);
      return exchange(url, ro, opts.body);
    };
  }

  private wrap(e: unknown, what: string): Error {
    const a = apiError(e);
    if (a) return new ModelshipError('cluster', `Kubernetes: ${what} failed (HTTP ${a.code}): ${a.message}`);
    // the network's failure (util/errors decides which codes are), or a fetch that failed without saying why
    const err = e as NodeJS.ErrnoException;
    if (externalFailure(e)?.system === 'network' || /fetch failed|ECONNREFUSED/.test(String(err?.message)))
      return new ModelshipError('cluster', `Kubernetes: ${what}: cannot reach the API server ${this.server}: ${err.message}`);
    return e as Error;
  }
}
