# Metastatic-site classifier: nested CV, permutation test, saved model, and
# prediction for a new batch (docs/methods.md §7).


rule classifier:
    input:
        matrix=f"results/normalised/{config['normalisation']['default']}.matrix.tsv",
        cells="results/preprocessed/cq.parquet",
        samples=config["samples"],
    output:
        metrics=report(
            "results/classifier/metrics.tsv",
            caption="../report/classifier_metrics.rst",
            category="5. Metastatic-site classifier",
        ),
        predictions="results/classifier/predictions.tsv",
        features=report(
            "results/classifier/features.tsv",
            caption="../report/classifier_features.rst",
            category="5. Metastatic-site classifier",
        ),
        model="results/classifier/model.skops",
        notes="results/classifier/notes.tsv",
    log:
        "logs/classifier.log",
    # The longest job: started as soon as the matrix exists (the greedy scheduler
    # otherwise picks the ready jobs with the largest inputs first, and the classifier
    # waited ~15 s behind the plots); predict, run_record and miqe wait for it.
    priority: 10
    conda:
        "../envs/python.yaml"
    # One process: measured on the example, 2 cores (bench_example.py, quiet): threads 2 =
    # 65.2 s wall, 104 s CPU (each worker loads scikit-learn; the job waits for both cores
    # and runs last); threads 1 = 57.1 s wall, 84 s CPU. More: --set-threads classifier=N.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        settings=config["classifier"],
        strategy=config["normalisation"]["default"],
    script:
        "../../scripts/classifier.py"


rule plot_classifier:
    input:
        predictions="results/classifier/predictions.tsv",
        metrics="results/classifier/metrics.tsv",
    output:
        roc=report(
            "results/classifier/plots/roc.svg",
            caption="../report/classifier_roc.rst",
            category="5. Metastatic-site classifier",
        ),
        calibration=report(
            "results/classifier/plots/calibration.svg",
            caption="../report/classifier_calibration.rst",
            category="5. Metastatic-site classifier",
        ),
    log:
        "logs/plot_classifier.log",
    conda:
        "../envs/python.yaml"
    script:
        "../../scripts/plot_classifier.py"


rule predict:
    input:
        plates=config["predict"]["plates"] or [],
        samples=config["predict"]["samples"] or [],
        exports=PREDICT_EXPORTS,
        assays=config["assays"],
        model="results/classifier/model.skops",
        chosen="results/reference_genes/chosen.tsv",
        # the training study's IPC table: read only when ipc.reference is not fixed
        calibration=(
            []
            if config["ipc"]["reference"] is not None
            else f"results/batches/{FIRST_BATCH}/plate_calibration.tsv"
        ),
    output:
        probabilities=report(
            "results/predict/probabilities.tsv",
            caption="../report/predict.rst",
            category="5. Metastatic-site classifier",
        ),
        cq="results/predict/cq.tsv",
    log:
        "logs/predict.log",
    conda:
        "../envs/python.yaml"
    params:
        chip=batch_settings(FIRST_BATCH),
        normalisation=config["normalisation"],
        ipc_reference=config["ipc"]["reference"],
        max_missing_fraction=config["predict"]["max_missing_fraction"],
    script:
        "../../scripts/predict.py"
