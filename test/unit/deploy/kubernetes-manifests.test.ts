// The Kubernetes manifests under deploy/kubernetes/, checked against the Kubernetes schemas
// (kubernetes-models) and against what the processors really do: every variable they set exists, the
// probes and the scrape annotations point at the sidecar's port, the grace period outlasts the stop
// bound, secrets arrive as files, and the container runs as the image's user on a read-only root.
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { parseAllDocuments } from 'yaml';
import { VARIABLES } from '../../../src/config/variables.js';
import { repoRoot } from '../../support/repo-root.js';

const KUBERNETES = join(repoRoot(), 'deploy/kubernetes');
/** The processors' stop bound (docs/operations.md): a clean stop takes at most this. */
const STOP_BOUND_SECONDS = 30;
const KNOWN = new Set(VARIABLES.map((v) => v.name));

interface Manifest {
  file: string;
  object: { apiVersion: string; kind: string; metadata?: { name?: string }; [key: string]: unknown };
}

function manifests(folder: string): Manifest[] {
  return readdirSync(join(KUBERNETES, folder))
    .filter((name) => name.endsWith('.yaml'))
    .flatMap((name) => parseAllDocuments(readFileSync(join(KUBERNETES, folder, name), 'utf8')).map((doc) => ({ file: `${folder}/${name}`, object: doc.toJSON() as Manifest['object'] })));
}

const folders = ['base', 'sidecar'];
const all = folders.flatMap(manifests);
const deployments = all.filter((m) => m.object.kind === 'Deployment').map((m) => ({ file: m.file, deployment: new Deployment(m.object as never) }));
const shredderContainers = deployments.flatMap(({ file, deployment }) => {
  const spec = deployment.spec!.template.spec!;
  return [...(spec.initContainers ?? []), ...spec.containers].filter((c) => c.image === 'kafka-shredder').map((container) => ({ file, spec, container }));
});
const envOf = (container: IContainer) => new Map((container.env ?? []).map((e) => [e.name, e.value]));

describe('the Kubernetes manifests', () => {
  it('are valid against the Kubernetes schemas, and each kustomization lists files that exist', () => {
    expect(deployments.length).to.be.greaterThanOrEqual(3);
    for (const { file, object } of all) {
      if (object.kind === 'Deployment') new Deployment(object as never).validate();
      else if (object.kind === 'ConfigMap') new ConfigMap(object as never).validate();
      else if (object.kind === 'PodDisruptionBudget') new PodDisruptionBudget(object as never).validate();
      else if (object.kind === 'Kustomization') {
        for (const resource of object.resources as string[]) expect(readFileSync(join(KUBERNETES, file, '..', resource), 'utf8'), `${file}: ${resource}`).to.not.equal('');
      } else expect.fail(`${file}: a ${object.kind} this test does not check`);
    }
  });

  it('set only variables kafka-shredder knows, and run encrypt or decrypt', () => {
    const configMap = all.find((m) => m.object.kind === 'ConfigMap')!.object as unknown as { metadata: { name: string }; data: Record<string, string> };
    for (const name of Object.keys(configMap.data)) expect(KNOWN.has(name), name).to.equal(true);
    expect(shredderContainers).to.have.length(3);
    for (const { file, container } of shredderContainers) {
      for (const name of envOf(container).keys()) expect(KNOWN.has(name), `${file}: ${name}`).to.equal(true);
      expect(container.args?.[0], file).to.be.oneOf(['encrypt', 'decrypt']);
      expect(container.envFrom?.[0].configMapRef?.name).to.equal(configMap.metadata.name);
    }
  });

  it('wire the probes and the scrape annotations to SHREDDER_HTTP_PORT, and outlast the stop bound', () => {
    for (const { file, spec, container } of shredderContainers) {
      const port = Number(envOf(container).get('SHREDDER_HTTP_PORT'));
      expect(container.ports?.find((p) => p.name === 'http')?.containerPort, file).to.equal(port);
      expect(container.readinessProbe?.httpGet?.path, file).to.equal('/readyz');
      expect(container.livenessProbe?.httpGet?.path, file).to.equal('/healthz');
      expect(spec.terminationGracePeriodSeconds, file).to.be.greaterThan(STOP_BOUND_SECONDS);
      const deployment = deployments.find((d) => d.file === file)!.deployment;
      const annotations = deployment.spec!.template.metadata!.annotations!;
      expect([annotations['prometheus.io/scrape'], Number(annotations['prometheus.io/port']), annotations['prometheus.io/path']], file).to.deep.equal(['true', port, '/metrics']);
    }
  });

  it('mount the master key from a Secret as a file, keep state in a volume, and run as user 1000 on a read-only root', () => {
    for (const { file, spec, container } of shredderContainers) {
      const env = envOf(container);
      const keyFile = env.get('SHREDDER_MASTER_KEY_FILE')!;
      const keyMount = container.volumeMounts!.find((m) => keyFile.startsWith(`${m.mountPath}/`))!;
      expect(keyMount.readOnly, file).to.equal(true);
      expect(spec.volumes!.find((v) => v.name === keyMount.name)!.secret?.secretName, file).to.equal('kafka-shredder-master-key');
      expect(env.has('SHREDDER_MASTER_KEY'), `${file}: no key in the environment`).to.equal(false);
      const stateMount = container.volumeMounts!.find((m) => m.mountPath === env.get('SHREDDER_STATE_DIR'));
      expect(stateMount, file).to.not.equal(undefined);
      expect(container.securityContext?.readOnlyRootFilesystem, file).to.equal(true);
      expect([spec.securityContext?.runAsUser, spec.securityContext?.runAsNonRoot], file).to.deep.equal([1000, true]);
    }
  });

  it('give each processor a PodDisruptionBudget, and the sidecar restartPolicy Always (a native sidecar)', () => {
    const budgets = all.filter((m) => m.object.kind === 'PodDisruptionBudget').map((m) => new PodDisruptionBudget(m.object as never));
    for (const { deployment } of deployments.filter((d) => d.file.startsWith('base/'))) {
      const labels = deployment.spec!.template.metadata!.labels!;
      const budget = budgets.find((b) => Object.entries(b.spec!.selector!.matchLabels!).every(([k, v]) => labels[k] === v));
      expect(budget, deployment.metadata!.name).to.not.equal(undefined);
    }
    const sidecar = shredderContainers.find((c) => c.file.startsWith('sidecar/'))!;
    expect(sidecar.spec.initContainers).to.include(sidecar.container);
    expect((sidecar.container as IContainer & { restartPolicy?: string }).restartPolicy).to.equal('Always');
  });
});
