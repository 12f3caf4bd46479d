import { runCliProcess } from './helpers/kube';

/**
 * Where the rollout, preview and cleanup stages find their cluster: an empty kubeconfig with nothing to fall back on
 * is an input error naming it (client-node alone would fall back to http://localhost:8080 and fail with a TLS
 * message, reported as a bug). In a workflow this is a kubeconfig secret that is not set or is misspelled.
 */
describe('kubeconfig', () => {
  test('empty, with no $KUBECONFIG, ~/.kube/config or service account: an input error naming it', async () => {
    const r = await runCliProcess(['cleanup', '--pr-number', '7', '--model-name', 'lenet'], {
      KUBECONFIG: '',
      HOME: '/nonexistent-home',
      KUBERNETES_SERVICE_HOST: '',
    });
    expect(r.code).toBe(2); // the CLI's exit status for bad input
    expect(r.stderr).toMatch(/input "kubeconfig": is empty, and there is no \$KUBECONFIG, no ~\/\.kube\/config and no in-cluster service account/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
