"""The real search problem: a candidate is costed from the device LUT, then its fusion network is
searched and retrained on frozen supernet features (the inner tier), all on validation data.

Everything heavy (dataset, supernets, LUT) is loaded lazily and once per worker process.

Cheap pass / lower bound. A candidate's cost (``ArchCost.total``) is Σ backbone layers + fusion
operators + reshape/head layers + the per-model overhead, minus, on a backend that runs an
exported graph (ONNX Runtime), the layers the output does not depend on. The bound is sound for
both cases:

* eager backends (torch, imported Jetson tables): every backbone layer runs, so the bound is the
  backbone-only cost + ``cells x nodes`` cheapest fusion operators + overhead;
* dead-code-pruning backends: only the last ``multiplier`` cells are sure to run (one node each at
  least), so at least ``min(multiplier, cells)`` cheapest operators run. With ``fusion.late_skip``
  every backbone runs whole (its classifier's logits reach the output), so the bound is every
  backbone layer + those operators + overhead; without it only one modality is sure to feed the
  fusion (up to its first fusion point), and the bound counts that cheapest prefix instead.

How modalities meet (``search.fusion_modes``, the genome's ``fusion_mode`` gene): a ``late``
candidate has no fusion network (its backbones' own classifiers combined by Bayes' rule,
:class:`~harmonic_nas.fusion.late.LateFusionNet`): it trains nothing, its cost is every backbone
layer and classifier plus the overhead (its bound is exact); ``network`` and ``network+late``
run the inner tier with ``fusion.late_skip`` off / on for that candidate. Without the gene every
candidate uses the config's ``fusion.late_skip``.
"""

from __future__ import annotations

import logging
import math
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from harmonic_nas.backbones import BackboneSpace
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.errors import ConfigError, LUTError
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace
from harmonic_nas.search.problem import (
    REAL_PROBLEM,
    SCREEN_FIDELITY,
    CostBound,
    Evaluation,
    TestScore,
    fidelity_epochs,
)
from harmonic_nas.utils.device import compute_device
from harmonic_nas.utils.io import atomic_torch_save
from harmonic_nas.utils.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from torch import nn

    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data.types import MultimodalDataset
    from harmonic_nas.fusion import ArchSpec, FusionGenotype
    from harmonic_nas.hardware import Cost, CostModel
    from harmonic_nas.hardware.cost import WeightBytes

logger = logging.getLogger(__name__)

#: The hypervolume reference point is this factor above the upper bound of every candidate's cost.
REFERENCE_MARGIN = 1.2


def space_from_config(cfg: ExperimentConfig) -> SearchSpace:
    """The joint search space of an experiment (backbone genes from the presets, cells/nodes from
    ``cfg.search``)."""
    return SearchSpace.from_ranges(
        {m: BackboneSpace.from_preset(mc.preset) for m, mc in cfg.modalities.items()},
        cfg.search.cells,
        cfg.search.nodes,
        cfg.search.fusion_modes,
    )


def genome_config(cfg: ExperimentConfig, genome: MultimodalGenome) -> ExperimentConfig:
    """``cfg`` with the ``fusion.late_skip`` of the genome's fusion mode (``cfg`` itself without
    a fusion-mode gene, or for a ``late`` genome, which runs no fusion network)."""
    if genome.fusion_mode is None or genome.is_late:
        return cfg
    late_skip = genome.fusion_mode == "network+late"
    if late_skip == cfg.fusion.late_skip:
        return cfg
    fusion = cfg.fusion.model_copy(update={"late_skip": late_skip})
    return cfg.model_copy(update={"fusion": fusion})


def model_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


class HarmonicProblem:
    """Harmonic-NAS candidate evaluation (see the module docstring)."""

    #: what a study records (:func:`~harmonic_nas.search.problem.problem_name`)
    name = REAL_PROBLEM

    def __init__(self, cfg: ExperimentConfig, *, device: torch.device | None = None) -> None:
        self.cfg = cfg
        self.device = device or compute_device(cfg)
        self._space = space_from_config(cfg)

    def check_ready(self) -> None:
        """Refuse before the study is opened for writing (so a refused search adds no failed
        trial and changes no budget): every modality's supernet is trained, finished and of
        this config (:func:`~harmonic_nas.pretrain.check_supernet`)."""
        from harmonic_nas.pretrain import check_supernet

        for m in self.cfg.modalities:
            check_supernet(self.cfg, m)

    # -- lazily loaded stage artifacts -------------------------------------------------------
    @cached_property
    def dataset(self) -> MultimodalDataset:
        from harmonic_nas.data import load_dataset

        return load_dataset(self.cfg)

    @cached_property
    def n_classes(self) -> int:
        return int(self.dataset.num_classes)

    @cached_property
    def supernets(self) -> dict[str, Any]:
        from harmonic_nas.pretrain import load_supernet

        return {
            m: load_supernet(self.cfg, m, self.n_classes, device=self.device)
            for m in self.cfg.modalities
        }

    @cached_property
    def cost_model(self) -> CostModel:
        from harmonic_nas.hardware import CostModel, get_lut

        return CostModel(get_lut(self.cfg), fallback=self.cfg.device.fallback_predictor)

    @cached_property
    def op_costs(self) -> dict[str, tuple[float, float]]:
        """Fusion operator -> (latency_ms, energy_mj) at the config's C, L on the device."""
        fc = self.cfg.fusion
        try:
            return self.cost_model.op_costs(fc.C, fc.L, fc.ops)
        except LUTError as exc:
            raise LUTError(
                f"the LUT of device '{self.cfg.device.name}' lacks fusion operator costs at "
                f"C={fc.C}, L={fc.L} ({exc}); profile them (`harmonic-nas profile CONFIG`) or "
                "set fusion.C/L to a profiled size"
            ) from None

    # -- the protocol --------------------------------------------------------------------------
    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def val_size(self) -> int:
        """Samples of the val split (the standard error of a val score)."""
        return len(self.dataset.split("val"))

    @property
    def task(self) -> str:
        return str(self.dataset.task)

    @property
    def metric(self) -> str:
        from harmonic_nas.tasks import metric_name

        return metric_name(self.dataset.task)

    def arch_spec(
        self, genome: MultimodalGenome, genotype: FusionGenotype | None = None
    ) -> ArchSpec:
        from harmonic_nas.fusion import ArchSpec, ModalityArch

        fc = genome_config(self.cfg, genome).fusion
        return ArchSpec(
            modalities={
                m: ModalityArch(
                    self.cfg.modalities[m].preset,
                    tuple(self.cfg.modalities[m].shape),
                    genome.backbones[m],
                )
                for m in self.cfg.modalities
            },
            cells=genome.cells,
            nodes=genome.nodes,
            genotype=genotype,
            C=fc.C,
            L=fc.L,
            fusion_points=fc.fusion_points,
            n_classes=self.n_classes,
            late_skip=fc.late_skip and not genome.is_late,
            late_fusion=genome.is_late,
        )

    def arch_json(
        self, genome: MultimodalGenome, genotype: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        from harmonic_nas.fusion import FusionGenotype

        geno = FusionGenotype.from_json(genotype) if genotype is not None else None
        return self.arch_spec(genome, geno).to_json()

    def _backbone_layers(self, genome: MultimodalGenome) -> dict[str, list[LayerSpec]]:
        from harmonic_nas.hardware.inventory import backbone_specs

        return {
            m: backbone_specs(mc.preset, mc.shape, genome.backbones[m], self.n_classes)
            for m, mc in self.cfg.modalities.items()
        }

    def _first_point_prefix(self, layers: list[LayerSpec]) -> list[LayerSpec]:
        """The layers that must run for the shallowest fusion point of a backbone."""
        from harmonic_nas.fusion import fusion_point_indices
        from harmonic_nas.hardware.inventory import feature_live_layers

        counts = feature_live_layers(layers)
        first = fusion_point_indices(len(counts), self.cfg.fusion.fusion_points)[0]
        return layers[: counts[first]]

    def _bound(self, genome: MultimodalGenome) -> Cost:
        """A lower bound of ``genome``'s cost with any genotype (see the module docstring)."""
        from harmonic_nas.hardware import Cost

        cm = self.cost_model
        layers = self._backbone_layers(genome)
        ops = self.op_costs.values()
        op = Cost(min(c[0] for c in ops), min(c[1] for c in ops))
        n_ops = genome.cells * genome.nodes
        backbones = Cost()
        if genome.is_late:  # exact: every backbone layer and classifier, no fusion layer
            return cm.cost_arch(self.arch_spec(genome)).total
        if not cm.prunes_dead_layers or genome_config(self.cfg, genome).fusion.late_skip:
            for specs in layers.values():
                backbones = backbones + cm.cost_layers(specs)
        else:
            prefixes = [cm.cost_layers(self._first_point_prefix(s)) for s in layers.values()]
            backbones = Cost(
                min(c.latency_ms for c in prefixes), min(c.energy_mj for c in prefixes)
            )
        if cm.prunes_dead_layers:
            n_ops = min(self.cfg.fusion.multiplier, genome.cells)
        total = backbones + cm.overhead()
        for _ in range(n_ops):
            total = total + op
        return cm.calibrated(total, 0.0)  # the calibration is monotone; weights >= 0

    def lower_bound(self, genome: MultimodalGenome) -> CostBound:
        c = self._bound(genome)
        return CostBound(c.latency_ms, c.energy_mj)

    def space_upper_bound(self) -> CostBound:
        """An upper bound of the total cost (``ArchCost.total``) of EVERY candidate of the search
        space with ANY fusion genotype, from the space and the device table alone.

        Latency and energy are bounded separately, each as the sum of per-slot maxima (so a
        table in which a bigger layer happens to be faster changes nothing):

        * each backbone: per layer slot, the dearest of the layers the space can put there
          (a block's layer depends only on its own kernel / expand genes and its slot; a
          shallower stage runs a subset of the slots);
        * fusion reshapes: a cell reads two states, so at most ``2 x max cells`` fusion points
          are reshaped: the dearest ``2 x max cells`` of the per-rank maxima of every modality's
          fusion points over its depth choices;
        * ``max cells x max nodes`` of the dearest operator, ``max cells`` cell norms, the
          dearest head (multiplier 1 .. max cells) and the per-model overhead.

        Layers the backend prunes only lower a candidate's cost, so the bound holds for both.
        """
        from harmonic_nas.fusion import operator_spec
        from harmonic_nas.hardware import Cost
        from harmonic_nas.hardware.cost import WeightBytes

        cm = self.cost_model
        raw = self._raw_upper_bound(cm, list(self.op_costs.values()))
        cal = cm.lut.calibration
        wbytes = 0.0
        if cal is not None and cal.w > 0:
            wb = WeightBytes()
            fc = self.cfg.fusion
            ops = [wb.layer_cost(operator_spec(op, fc.C, fc.L)) for op in fc.ops]
            wbytes = self._raw_upper_bound(
                wb, [(c.latency_ms, c.energy_mj) for c in ops]
            ).latency_ms
        hi = cm.calibrated(Cost(raw.latency_ms, raw.energy_mj), wbytes)
        return CostBound(hi.latency_ms, hi.energy_mj)

    def _raw_upper_bound(
        self, cm: CostModel | WeightBytes, ops: list[tuple[float, float]]
    ) -> CostBound:
        """:meth:`space_upper_bound` before calibration, for ``cm`` (the LUT, or weight bytes)."""
        from harmonic_nas.fusion import (
            ArchSpec,
            ModalityArch,
            cell_norm_spec,
            head_spec,
            point_refs,
            reshape_spec,
        )
        from harmonic_nas.hardware.inventory import (
            arch_feature_shapes,
            backbone_specs,
        )

        fc = self.cfg.fusion
        n = self.n_classes
        max_cells, max_nodes = max(self.space.cells), max(self.space.nodes)
        lat = en = 0.0
        # backbones: per-slot maxima over the genomes at maximum depth
        for mc in self.cfg.modalities.values():
            lists = [
                backbone_specs(mc.preset, mc.shape, g, n)
                for g in BackboneSpace.from_preset(mc.preset).covering_genomes()
            ]
            deepest = max(len(x) for x in lists)
            costs = [[cm.layer_cost(s) for s in x] for x in lists if len(x) == deepest]
            lat += sum(max(c[i].latency_ms for c in costs) for i in range(deepest))
            en += sum(max(c[i].energy_mj for c in costs) for i in range(deepest))
        # fusion reshapes: per modality and rank, the dearest point over the depth choices
        ranked_lat: list[float] = []
        ranked_en: list[float] = []
        for name, mc in self.cfg.modalities.items():
            per_lat: list[float] = []
            per_en: list[float] = []
            for genome in BackboneSpace.from_preset(mc.preset).depth_genomes():
                arch = ArchSpec(
                    modalities={name: ModalityArch(mc.preset, tuple(mc.shape), genome)},
                    cells=1,
                    nodes=1,
                    C=fc.C,
                    L=fc.L,
                    fusion_points=fc.fusion_points,
                    n_classes=n,
                )
                shapes = arch_feature_shapes(arch)
                pts = [
                    cm.layer_cost(reshape_spec(shapes[m][k], fc.C, fc.L))
                    for m, k in point_refs(arch, shapes)
                ]
                for acc, vals in (
                    (per_lat, sorted((c.latency_ms for c in pts), reverse=True)),
                    (per_en, sorted((c.energy_mj for c in pts), reverse=True)),
                ):
                    acc.extend([0.0] * (len(vals) - len(acc)))
                    for i, v in enumerate(vals):
                        acc[i] = max(acc[i], v)
            ranked_lat += per_lat
            ranked_en += per_en
        n_read = 2 * max_cells
        lat += sum(sorted(ranked_lat, reverse=True)[:n_read])
        en += sum(sorted(ranked_en, reverse=True)[:n_read])
        # operators, cell norms, head, overhead
        lat += max_cells * max_nodes * max(c[0] for c in ops)
        en += max_cells * max_nodes * max(c[1] for c in ops)
        norm = cm.layer_cost(cell_norm_spec(fc.C, fc.L))
        lat += max_cells * norm.latency_ms
        en += max_cells * norm.energy_mj
        heads = [cm.layer_cost(head_spec(k, fc.C, fc.L, n)) for k in range(1, max_cells + 1)]
        lat += max(h.latency_ms for h in heads)
        en += max(h.energy_mj for h in heads)
        overhead = cm.overhead()
        return CostBound(lat + overhead.latency_ms, en + overhead.energy_mj)

    def reference_costs(self) -> tuple[CostBound, CostBound]:
        """``(ideal, reference)``: the ideal is the smallest genome's lower bound, the reference
        :data:`REFERENCE_MARGIN` x :meth:`space_upper_bound` (it bounds every candidate, and it
        depends on the search space and the device table only: every strategy and seed of one
        setup is normalised alike)."""
        lo = self._bound(self.space.min_genome())
        hi = self.space_upper_bound()
        return (
            CostBound(lo.latency_ms, lo.energy_mj),
            CostBound(hi.latency_ms * REFERENCE_MARGIN, hi.energy_mj * REFERENCE_MARGIN),
        )

    def evaluate(
        self,
        genome: MultimodalGenome,
        *,
        seed: int,
        progress: ProgressFn = no_progress,
        fidelity: float = 1.0,
    ) -> Evaluation:
        from harmonic_nas.fusion.runner import run_inner_tier
        from harmonic_nas.hardware.inventory import arch_live_graph

        if fidelity <= SCREEN_FIDELITY:
            return self.screen(genome)
        if genome.is_late:
            return self.evaluate_late(genome)
        arch = self.arch_spec(genome)
        cm = self.cost_model
        cfg = genome_config(self.cfg, genome)
        epochs = fidelity_epochs(cfg.fusion.epochs, cfg.fusion.retrain_epochs, fidelity)
        if epochs != (cfg.fusion.epochs, cfg.fusion.retrain_epochs):  # the cheap evaluation
            fusion = cfg.fusion.model_copy(
                update={"epochs": epochs[0], "retrain_epochs": epochs[1]}
            )
            cfg = cfg.model_copy(update={"fusion": fusion})
        result = run_inner_tier(
            cfg,
            arch,
            self.dataset,
            self.supernets,
            op_costs=self.op_costs,
            base_cost=cm.base_cost(arch),
            seed=seed,
            device=self.device,
            progress=progress,
        )
        cost = cm.cost_arch(result.arch)
        r = result.result
        live = arch_live_graph(result.arch)
        return Evaluation(
            val_metric=float(r.val_metric),
            latency_ms=cost.total.latency_ms,
            energy_mj=cost.total.energy_mj,
            params=self._live_params(result.model),
            latency_paper_ms=cost.paper_total.latency_ms,
            energy_paper_mj=cost.paper_total.energy_mj,
            genotype=r.genotype.to_json(),
            extra={
                "search_metric": float(r.search_metric),
                "best_epoch": r.best_epoch,
                "fusion_params": r.params,
                "timings": dict(r.timings),
                "search_curve": [h["arch_metric"] for h in r.history if h["phase"] == "search"],
                "val_curve": [h["val_metric"] for h in r.history if h["phase"] == "retrain"],
                **self._val_pred_extra(r.val_pred),
            },
            modalities_used=[m for m, n in live.features.items() if n > 0],
            predicted_keys=list(cost.predicted_keys),
            uncosted_keys=list(cost.uncosted_keys),
        )

    def late_model(self, genome: MultimodalGenome) -> nn.Module:
        """The :class:`~harmonic_nas.fusion.late.LateFusionNet` of a ``late`` genome: its subnets
        (BN-recalibrated as every extracted subnet) and the train split's label prior."""
        from harmonic_nas.fusion import late
        from harmonic_nas.pretrain import calibration_generator, extract_calibrated

        cfg, ds = self.cfg, self.dataset
        train = ds.split("train")
        subs = {
            m: extract_calibrated(
                sn,
                genome.backbones[m],
                train.inputs[m],
                train.labels,
                batches=cfg.pretrain.bn_recalib_batches,
                batch_size=cfg.pretrain.batch_size,
                generator=calibration_generator(cfg.seed),
            )
            for m, sn in self.supernets.items()
        }
        prior = late.label_prior(train.labels, ds.task, self.n_classes)
        offset = late.bayes_offset(prior, len(subs), ds.task)
        return late.LateFusionNet(self.arch_spec(genome), subs, offset, ds.task).eval()

    def predict(self, model: nn.Module, split: str) -> torch.Tensor:
        """``model``'s logits on a whole split of the dataset (modalities in config order)."""
        data = self.dataset.split(split)
        with torch.no_grad():
            out: torch.Tensor = model(
                *(data.inputs[m].to(self.device) for m in self.cfg.modalities)
            )
        return out.cpu()

    def evaluate_late(self, genome: MultimodalGenome) -> Evaluation:
        """A ``late`` candidate: no training; val metric of :meth:`late_model`, cost from the LUT
        (every backbone layer and classifier, the overhead)."""
        from harmonic_nas.fusion import late
        from harmonic_nas.tasks import task_predictions

        ds, thr = self.dataset, self.cfg.fusion.threshold
        model = self.late_model(genome)
        logits = self.predict(model, "val")
        cost = self.cost_model.cost_arch(self.arch_spec(genome))
        return Evaluation(
            val_metric=late.score(logits, ds.split("val").labels, ds.task, thr),
            latency_ms=cost.total.latency_ms,
            energy_mj=cost.total.energy_mj,
            params=self._live_params(model),
            latency_paper_ms=cost.paper_total.latency_ms,
            energy_paper_mj=cost.paper_total.energy_mj,
            extra={
                "fusion_mode": "late",
                **self._val_pred_extra(task_predictions(logits, ds.task, thr)),
            },
            modalities_used=list(self.cfg.modalities),
            predicted_keys=list(cost.predicted_keys),
            uncosted_keys=list(cost.uncosted_keys),
        )

    def screen(self, genome: MultimodalGenome) -> Evaluation:
        """The screen of ``search.fidelity: screen``, without any fusion training: the val metric
        of the candidate's subnets with their own classifiers, logits averaged (late fusion),
        BN-recalibrated as every extracted subnet; cost = the LUT lower bound of the candidate."""
        from harmonic_nas.fusion import late
        from harmonic_nas.pretrain import calibration_generator, extract_calibrated
        from harmonic_nas.tasks import task_predictions

        cfg, ds = self.cfg, self.dataset
        train, val = ds.split("train"), ds.split("val")
        outs, n_params = {}, 0
        for m, sn in self.supernets.items():
            sub = extract_calibrated(
                sn,
                genome.backbones[m],
                train.inputs[m],
                train.labels,
                batches=cfg.pretrain.bn_recalib_batches,
                batch_size=cfg.pretrain.batch_size,
                generator=calibration_generator(cfg.seed),
            )
            outs[m] = late.backbone_outputs(sub, val.inputs[m], self.device)
            n_params += model_params(sub)
        bound = self.lower_bound(genome)
        return Evaluation(
            val_metric=late.score(
                late.average_logits(outs), val.labels, ds.task, cfg.fusion.threshold
            ),
            latency_ms=bound.latency_ms,
            energy_mj=bound.energy_mj,
            params=n_params,
            extra={
                "screen": "late fusion of the subnets' own classifiers (logits averaged)",
                **self._val_pred_extra(
                    task_predictions(late.average_logits(outs), ds.task, cfg.fusion.threshold)
                ),
            },
        )

    @staticmethod
    def _val_pred_extra(pred: np.ndarray | None) -> dict[str, Any]:
        """``{"val_pred": ...}``: the model's per-sample val predictions, as the instrument's
        bootstrap reads them (:func:`harmonic_nas.search.front_metrics.encode_array`)."""
        from harmonic_nas.search.front_metrics import encode_array

        return {} if pred is None else {"val_pred": encode_array(pred)}

    @property
    def energy_modelled(self) -> bool:
        """Energy is constant power x latency on this device: not an objective of its own."""
        return self.cost_model.lut.energy_modelled

    @property
    def energy_source(self) -> str:
        return self.cost_model.lut.energy_source

    def _live_params(self, model: nn.Module) -> int:
        """Parameters of the layers the model's output depends on (see ``live_parameters``)."""
        from harmonic_nas.fusion.model import live_parameters

        inputs = [
            torch.zeros((2, *self.cfg.modalities[m].shape), device=self.device)
            for m in self.cfg.modalities
        ]
        return live_parameters(model, inputs)

    def score_test(
        self,
        genome: MultimodalGenome,
        evaluation: Evaluation,
        *,
        seeds: list[int],
        model_dir: Path,
        progress: ProgressFn = no_progress,
    ) -> TestScore:
        from harmonic_nas.data.fusion_split import fusion_dataset
        from harmonic_nas.fusion import (
            FusionGenotype,
            MultimodalNet,
            compute_feature_cache,
            evaluate,
            train_fixed,
        )
        from harmonic_nas.fusion.runner import extract_backbones
        from harmonic_nas.fusion.search import predict_logits
        from harmonic_nas.tasks import per_label_scores

        if genome.is_late:
            return self._score_test_late(genome, model_dir)
        if evaluation.genotype is None:
            raise ConfigError("a Pareto member has no fusion genotype; rerun the search")
        arch = self.arch_spec(genome, FusionGenotype.from_json(evaluation.genotype))
        assert arch.genotype is not None
        fc = genome_config(self.cfg, genome).fusion
        backbones = extract_backbones(self.cfg, arch, self.supernets)
        cache = compute_feature_cache(
            backbones,
            fusion_dataset(self.dataset),
            splits=("train", "val", "test"),
            L=fc.L,
            fusion_points=fc.fusion_points,
            bn_recalib_batches=self.cfg.pretrain.bn_recalib_batches,
            batch_size=self.cfg.pretrain.batch_size,
            device=self.device,
            seed=self.cfg.seed,
            progress=progress,
        )
        scores = []
        per_label = None
        test_split = cache.split("test")
        for i, seed in enumerate(seeds):
            net, _ = train_fixed(
                cache,
                arch.genotype,
                fc,
                seed=seed,
                device=self.device,
                progress=progress,
                precision=self.cfg.compute.precision,
            )
            _, test = evaluate(
                net, test_split, cache.task, threshold=fc.threshold, select=net.used_points
            )
            scores.append(float(test))
            if i == 0:  # the evaluation seed: the very model the search scored
                logits = predict_logits(net, test_split, select=net.used_points).cpu()
                probs = (
                    torch.sigmoid(logits)
                    if cache.task == "multilabel"
                    else torch.softmax(logits, dim=1)
                )
                per_label = per_label_scores(
                    probs.double().numpy(),
                    test_split.labels.cpu().numpy(),
                    cache.task,
                    fc.threshold,
                    self.dataset.class_names,
                )
                model = MultimodalNet(arch, backbones, net).eval()
                arch.save(model_dir / "arch.json")
                atomic_torch_save(
                    model_dir / "weights.pt",
                    {k: v.detach().cpu() for k, v in model.state_dict().items()},
                )
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
        return TestScore(mean, std, arch.to_json(), model_dir, per_label)

    def _score_test_late(self, genome: MultimodalGenome, model_dir: Path) -> TestScore:
        """A ``late`` member: nothing is trained, so every seed gives the same score (std 0)."""
        from harmonic_nas.fusion import late

        ds = self.dataset
        model = self.late_model(genome)
        arch = self.arch_spec(genome)
        test = late.score(
            self.predict(model, "test"),
            ds.split("test").labels,
            ds.task,
            self.cfg.fusion.threshold,
        )
        arch.save(model_dir / "arch.json")
        atomic_torch_save(
            model_dir / "weights.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()}
        )
        return TestScore(float(test), 0.0, arch.to_json(), model_dir)


def build_problem(cfg: ExperimentConfig) -> HarmonicProblem:
    """The default problem factory (``harmonic_nas.search.evaluator:build_problem``)."""
    return HarmonicProblem(cfg)
