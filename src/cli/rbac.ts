import { ModelshipError } from '../util/errors';
import { rbacYaml, RbacOptions } from '../rollout/permissions';

export const RBAC_USAGE = `usage: modelship rbac --namespace NS [--service-account NAME] [--stage rollout|preview]
                     [--create-namespace] [--create-pull-secret] [--gpu] [--verify-url] [--autoscale]
                     [--pod-metrics]

Prints, as YAML for \`kubectl apply -f -\`, a ServiceAccount and the least RBAC its runs need (generated from the
table in src/rollout/permissions.ts; each rule says why it is there):
  --stage rollout (default)  a Role and RoleBinding in NS, the deploy namespace (it must exist); no ClusterRole
  --stage preview            previews and their cleanup: a ClusterRole for the namespaces <app>-pr-<N> (get, create,
                             delete) and the deploy rules bound cluster-wide (a namespace the run creates has no Role
                             before it exists); NS is the ServiceAccount's namespace
  --service-account NAME     default modelship-deployer
  --create-namespace         the rollout creates NS (as --stage preview: cluster-scoped)
  --create-pull-secret, --gpu, --verify-url: the runs use these inputs (Secrets; the pod proxy and logs; no service proxy)
  --autoscale                the runs use autoscale (HorizontalPodAutoscalers, KEDA ScaledObjects)
  --pod-metrics              the runs use compare-with-stable without prometheus-url (the pod proxy, for /metrics)
See README "Least-privilege deploy identity" for the token kubeconfig to give as the kubeconfig secret.
`;

const BOOLEANS = {
  'create-namespace': 'createNamespace',
  'create-pull-secret': 'createPullSecret',
  gpu: 'gpu',
  'verify-url': 'verifyUrl',
  autoscale: 'autoscale',
  'pod-metrics': 'podMetrics',
} as const;

/** `modelship rbac ...`: the RBAC objects on `out`. Returns the exit code. */
export function rbacMain(argv: string[], out: NodeJS.WritableStream): number {
  const identity: RbacOptions = { namespace: '', serviceAccount: 'modelship-deployer', stage: 'rollout' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      out.write(RBAC_USAGE);
      return 0;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq >= 0 ? eq : undefined) : '';
    if (name in BOOLEANS) {
      if (eq >= 0) throw new ModelshipError('input', `rbac: --${name} takes no value`, { field: name });
      identity[BOOLEANS[name as keyof typeof BOOLEANS]] = true;
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (!['namespace', 'service-account', 'stage'].includes(name)) throw new ModelshipError('input', `rbac: unexpected argument "${a}"\n${RBAC_USAGE}`);
    if (value === undefined || value === '') throw new ModelshipError('input', `rbac: --${name} needs a value`, { field: name });
    if (name === 'namespace') identity.namespace = value;
    else if (name === 'service-account') identity.serviceAccount = value;
    else if (value === 'rollout' || value === 'preview') identity.stage = value;
    else throw new ModelshipError('input', `rbac: --stage must be rollout or preview (preview includes its cleanup), got "${value}"`, { field: 'stage' });
  }
  if (!identity.namespace)
    throw new ModelshipError('input', `rbac: --namespace is required (rollout: the deploy namespace; preview: the ServiceAccount's)\n${RBAC_USAGE}`, {
      field: 'namespace',
    });
  out.write(rbacYaml(identity, `modelship rbac ${argv.join(' ')}`));
  return 0;
}
