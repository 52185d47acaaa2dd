/**
 * An execution plan: everything one forward pass needs for one (batch, sequence length) bucket,
 * built once and replayed. Activation buffers are allocated here and never again for this shape;
 * bind groups are created here, and ALBERT's shared layers reuse the same ones at every depth.
 * A forward pass is one compute pass in one command buffer, with one readback at the end.
 */
import { encodeDispatches, type KernelDispatch } from '../../shaders/kernel';
import type { EncoderConfig } from '../model/types';
import { layerSchedule } from '../model/types';
import type { GpuLayer, GpuWeights } from './gpu-weights';
import type { EngineKernels } from './kernels';

export interface PlanInput {
  /** u32 token ids, [batch × seqLen] for the plan's padded batch. */
  inputIds: Uint32Array;
  tokenTypeIds: Uint32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Uint32Array;
}

export interface PlanOutput {
  /** Per-layer logits, [numLayers][batch][numLabels] flattened. Empty when there is no classifier. */
  logits: Float32Array;
  /** Per-layer pooled [CLS] states, [numLayers][batch][hidden] flattened, when requested. */
  pooled?: Float32Array;
}

export class ExecutionPlan {
  readonly batch: number;
  readonly seqLen: number;
  /** Bytes of GPU memory the plan's activation buffers hold. */
  readonly bytes: number;

  private readonly device: GPUDevice;
  private readonly config: EncoderConfig;
  private readonly buffers: GPUBuffer[] = [];
  private readonly inputIds: GPUBuffer;
  private readonly tokenTypeIds: GPUBuffer;
  private readonly mask: GPUBuffer;
  private readonly logits: GPUBuffer;
  private readonly pooled: GPUBuffer;
  private readonly logitsStaging: GPUBuffer | null;
  private readonly pooledStaging: GPUBuffer;
  private readonly dispatches: KernelDispatch[];

  constructor(
    device: GPUDevice,
    config: EncoderConfig,
    weights: GpuWeights,
    kernels: EngineKernels,
    batch: number,
    seqLen: number,
  ) {
    this.device = device;
    this.config = config;
    this.batch = batch;
    this.seqLen = seqLen;
    const rows = batch * seqLen;
    const { hiddenSize: H, embeddingSize: E, intermediateSize: I, numHiddenLayers: L } = config;
    const C = weights.classifier ? config.numLabels : 0;
    let bytes = 0;
    const storage = (label: string, elements: number, extraUsage = 0) => {
      const size = Math.max(16, Math.ceil((elements * 4) / 16) * 16);
      const buffer = device.createBuffer({
        label: `plan${batch}x${seqLen}.${label}`,
        size,
        usage: GPUBufferUsage.STORAGE | extraUsage,
      });
      this.buffers.push(buffer);
      bytes += size;
      return buffer;
    };
    const staging = (label: string, elements: number) => {
      const buffer = device.createBuffer({
        label: `plan${batch}x${seqLen}.${label}`,
        size: Math.max(16, Math.ceil((elements * 4) / 16) * 16),
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      this.buffers.push(buffer);
      return buffer;
    };

    const COPY_DST = GPUBufferUsage.COPY_DST;
    const COPY_SRC = GPUBufferUsage.COPY_SRC;
    this.inputIds = storage('inputIds', rows, COPY_DST);
    this.tokenTypeIds = storage('tokenTypeIds', rows, COPY_DST);
    this.mask = storage('mask', rows, COPY_DST);
    const hidden = storage('hidden', rows * H);
    const attentionNormed = storage('attentionNormed', rows * H);
    const qkv = storage('qkv', rows * 3 * H);
    const context = storage('context', rows * H);
    const projected = storage('projected', rows * H);
    const intermediate = storage('intermediate', rows * I);
    this.pooled = storage('pooled', L * batch * H, COPY_SRC);
    this.logits = storage('logits', Math.max(1, L * batch * C), COPY_SRC);
    this.logitsStaging = C > 0 ? staging('logitsStaging', L * batch * C) : null;
    this.pooledStaging = staging('pooledStaging', L * batch * H);

    const d: KernelDispatch[] = [];
    const embedOut = weights.embeddingProjection ? storage('embedded', rows * E) : hidden;
    d.push(
      kernels.embedding.prepare(
        {
          tokenIds: this.inputIds,
          tokenTypeIds: this.tokenTypeIds,
          word: weights.word,
          position: weights.position,
          tokenType: weights.tokenType,
          gamma: weights.embeddingNorm.gamma,
          beta: weights.embeddingNorm.beta,
          output: embedOut,
        },
        {
          rows,
          seqLen,
          width: E,
          eps: config.layerNormEps,
          vocabSize: config.vocabSize,
          typeVocabSize: config.typeVocabSize,
        },
      ),
    );
    if (weights.embeddingProjection) {
      const p = weights.embeddingProjection;
      d.push(
        kernels.linear.prepare(
          { input: embedOut, weight: p.weight, bias: p.bias, output: hidden },
          { M: rows, N: H, K: E },
        ),
      );
    }

    // The dispatches of one distinct layer; built once and reused wherever the schedule applies it.
    const layerDispatches = new Map<number, KernelDispatch[]>();
    const dispatchesFor = (index: number, layer: GpuLayer): KernelDispatch[] => {
      const cached = layerDispatches.get(index);
      if (cached) return cached;
      const eps = config.layerNormEps;
      const list = [
        kernels.linear.prepare(
          { input: hidden, weight: layer.qkv.weight, bias: layer.qkv.bias, output: qkv },
          { M: rows, N: 3 * H, K: H },
        ),
        kernels.attention.prepare(
          { qkv, mask: this.mask, output: context },
          { batch, seqLen, heads: config.numAttentionHeads, headDim: H / config.numAttentionHeads },
        ),
        kernels.linear.prepare(
          {
            input: context,
            weight: layer.attentionOutput.weight,
            bias: layer.attentionOutput.bias,
            output: projected,
          },
          { M: rows, N: H, K: H },
        ),
        kernels.addLayerNorm.prepare(
          {
            input: projected,
            residual: hidden,
            gamma: layer.attentionNorm.gamma,
            beta: layer.attentionNorm.beta,
            output: attentionNormed,
          },
          { rows, width: H, eps },
        ),
        kernels.activated.prepare(
          {
            input: attentionNormed,
            weight: layer.intermediate.weight,
            bias: layer.intermediate.bias,
            output: intermediate,
          },
          { M: rows, N: I, K: H },
        ),
        kernels.linear.prepare(
          { input: intermediate, weight: layer.output.weight, bias: layer.output.bias, output: projected },
          { M: rows, N: H, K: I },
        ),
        // The layer's output overwrites `hidden`, whose last reader was the attention residual above.
        kernels.addLayerNorm.prepare(
          {
            input: projected,
            residual: attentionNormed,
            gamma: layer.outputNorm.gamma,
            beta: layer.outputNorm.beta,
            output: hidden,
          },
          { rows, width: H, eps },
        ),
      ];
      layerDispatches.set(index, list);
      return list;
    };

    const schedule = layerSchedule(config);
    schedule.forEach((applied, depth) => {
      for (const index of applied) d.push(...dispatchesFor(index, weights.layers[index]!));
      // PALBERT's shared head after every layer: pooler (tanh dense on [CLS]) then classifier.
      if (weights.pooler) {
        d.push(
          kernels.pooler.prepare(
            { input: hidden, weight: weights.pooler.weight, bias: weights.pooler.bias, output: this.pooled },
            { M: batch, N: H, K: H, inputRowStride: seqLen * H, outputOffset: depth * batch * H },
          ),
        );
      }
      if (weights.classifier && weights.pooler) {
        d.push(
          kernels.linear.prepare(
            {
              input: this.pooled,
              weight: weights.classifier.weight,
              bias: weights.classifier.bias,
              output: this.logits,
            },
            { M: batch, N: C, K: H, inputOffset: depth * batch * H, outputOffset: depth * batch * C },
          ),
        );
      }
    });
    this.dispatches = d;
    this.bytes = bytes;
  }

  /** Number of dispatches one forward pass encodes (for documentation and benchmarks). */
  get dispatchCount(): number {
    return this.dispatches.length;
  }

  /** Runs one forward pass: uploads the inputs, encodes one command buffer, reads back once. */
  async run(input: PlanInput, options: { readPooled?: boolean } = {}): Promise<PlanOutput> {
    const { device } = this;
    device.queue.writeBuffer(this.inputIds, 0, input.inputIds);
    device.queue.writeBuffer(this.tokenTypeIds, 0, input.tokenTypeIds);
    device.queue.writeBuffer(this.mask, 0, input.attentionMask);

    const encoder = device.createCommandEncoder({ label: 'forward' });
    const pass = encoder.beginComputePass({ label: 'forward' });
    encodeDispatches(pass, this.dispatches);
    pass.end();
    const readPooled = options.readPooled === true || !this.logitsStaging;
    if (this.logitsStaging)
      encoder.copyBufferToBuffer(this.logits, 0, this.logitsStaging, 0, this.logitsStaging.size);
    if (readPooled)
      encoder.copyBufferToBuffer(this.pooled, 0, this.pooledStaging, 0, this.pooledStaging.size);
    device.queue.submit([encoder.finish()]);

    const { numHiddenLayers: L, numLabels, hiddenSize: H } = this.config;
    const output: PlanOutput = { logits: new Float32Array(0) };
    const reads: Promise<void>[] = [];
    if (this.logitsStaging) {
      const staging = this.logitsStaging;
      reads.push(
        staging.mapAsync(GPUMapMode.READ).then(() => {
          output.logits = new Float32Array(
            staging.getMappedRange(0, L * this.batch * numLabels * 4).slice(0),
          );
          staging.unmap();
        }),
      );
    }
    if (readPooled) {
      const staging = this.pooledStaging;
      reads.push(
        staging.mapAsync(GPUMapMode.READ).then(() => {
          output.pooled = new Float32Array(staging.getMappedRange(0, L * this.batch * H * 4).slice(0));
          staging.unmap();
        }),
      );
    }
    await Promise.all(reads);
    return output;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
