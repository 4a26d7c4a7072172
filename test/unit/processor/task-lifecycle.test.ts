// A partition task's lifecycle, which /readyz reports: ready only once an attempt to open the task
// succeeded, failing from a failed attempt until one succeeds, restoring again after an aborted batch,
// and nothing an attempt that is no longer the partition's does can make it ready.

import { expect } from 'chai';

import type { PartitionTask } from '../../../src/processor/partition-task.js';
import { TaskLifecycle, type OpenFailure } from '../../../src/processor/task-lifecycle.js';

const task = (partition: number) => ({ partition }) as unknown as PartitionTask;
const attemptOf = (t: PartitionTask) => Promise.resolve(t);
const failure = (error: string): OpenFailure => ({ since: Date.now(), attempts: 1, error, reason: error, timer: setTimeout(() => {}, 0) });

describe('a partition task\'s lifecycle', () => {
  it('restores, then is ready once its attempt opened the task', () => {
    const lifecycle = new TaskLifecycle(3);
    expect(lifecycle.state).to.equal('restoring');
    const opened = task(3);
    const attempt = attemptOf(opened);
    lifecycle.opening(attempt);
    expect(lifecycle.task).to.equal(attempt);
    expect(lifecycle.state).to.equal('restoring');
    expect(lifecycle.openedBy(attempt, opened)).to.equal(undefined);
    expect(lifecycle.state).to.equal('ready');
  });

  it('is failing from a failed attempt until a retry opens it, which ends the failure', () => {
    const lifecycle = new TaskLifecycle(0);
    const first = Promise.reject(new Error('LOCK held')).catch(() => task(0));
    lifecycle.opening(first);
    const failed = failure('LOCK held');
    lifecycle.failedBy(first, failed);
    expect(lifecycle.state).to.equal('failing');
    expect(lifecycle.task, 'no attempt under way between retries').to.equal(undefined);
    expect(lifecycle.openFailure).to.equal(failed);
    const retry = attemptOf(task(0));
    lifecycle.opening(retry);
    expect(lifecycle.state, 'still failing while the retry runs').to.equal('failing');
    expect(lifecycle.openedBy(retry, task(0))).to.equal(failed);
    expect(lifecycle.state).to.equal('ready');
    expect(lifecycle.openFailure).to.equal(undefined);
  });

  it('a failure that does not count (stopping, moving) leaves it restoring, with no attempt', () => {
    const lifecycle = new TaskLifecycle(1);
    const attempt = attemptOf(task(1));
    lifecycle.opening(attempt);
    lifecycle.failedBy(attempt, undefined);
    expect(lifecycle.state).to.equal('restoring');
    expect(lifecycle.task).to.equal(undefined);
  });

  it('goes back to restoring when a batch of its open task aborts, not for another task', () => {
    const lifecycle = new TaskLifecycle(2);
    const opened = task(2);
    const attempt = attemptOf(opened);
    lifecycle.opening(attempt);
    lifecycle.openedBy(attempt, opened);
    lifecycle.aborted(task(2));
    expect(lifecycle.state, 'another task\'s abort changes nothing').to.equal('ready');
    lifecycle.aborted(opened);
    expect(lifecycle.state).to.equal('restoring');
    expect(lifecycle.task, 'the next batch reopens it').to.equal(undefined);
  });

  it('once closed, stays closed: a late attempt does not make it ready and it cannot be opened again', () => {
    const lifecycle = new TaskLifecycle(4);
    const attempt = attemptOf(task(4));
    lifecycle.opening(attempt);
    lifecycle.failedBy(Promise.resolve(task(4)), failure('x'));
    expect(lifecycle.close(), 'the attempt to close').to.equal(attempt);
    expect(lifecycle.state).to.equal('closed');
    expect(lifecycle.openFailure).to.equal(undefined);
    expect(lifecycle.openedBy(attempt, task(4))).to.equal(undefined);
    expect(lifecycle.state).to.equal('closed');
    lifecycle.failedBy(attempt, failure('y'));
    expect(lifecycle.state).to.equal('closed');
    expect(() => lifecycle.opening(attemptOf(task(4)))).to.throw(/partition 4: its task cannot go opening once closed/);
  });

  it('an attempt superseded by a newer one cannot make it ready', () => {
    const lifecycle = new TaskLifecycle(5);
    const opened = task(5);
    const old = attemptOf(opened);
    lifecycle.opening(old);
    lifecycle.openedBy(old, opened);
    lifecycle.aborted(opened);
    const newer = attemptOf(task(5));
    lifecycle.opening(newer);
    expect(lifecycle.openedBy(old, opened)).to.equal(undefined);
    expect(lifecycle.state).to.equal('restoring');
  });
});
