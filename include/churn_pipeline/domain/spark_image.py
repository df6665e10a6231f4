"""SageMaker's own Spark processing image: which tag the Spark engine runs, and where it is published.

Pure: no AWS call, no SDK import. The tag is pinned (``3.5-cpu-py312-v1.3``: Spark 3.5.6, Python 3.12,
Java 17): the py312 line moved from Java 8 to 17 within a minor tag (v1.1), so a floating tag could
change the JVM under a running deployment. The accounts are the SageMaker Python SDK's own table for
Spark 3.5 processing (``src/sagemaker/image_uri_config/spark.json``, tag v2.257.6); a unit test holds
them equal to the table of the SDK installed here.
"""

from __future__ import annotations

SPARK_IMAGE_REPOSITORY = "sagemaker-spark-processing"
SPARK_IMAGE_TAG = "3.5-cpu-py312-v1.3"
SPARK_VERSION = "3.5.6"  # what that image runs (EMR 7.12's Spark 3.5.6-amzn-1), recorded with each Spark model

SPARK_IMAGE_ACCOUNTS: dict[str, str] = {
    "af-south-1": "309385258863", "ap-east-1": "732049463269", "ap-east-2": "533267296287",
    "ap-northeast-1": "411782140378", "ap-northeast-2": "860869212795", "ap-northeast-3": "102471314380",
    "ap-south-1": "105495057255", "ap-south-2": "873151114052", "ap-southeast-1": "759080221371",
    "ap-southeast-2": "440695851116", "ap-southeast-3": "800295151634", "ap-southeast-4": "819679513684",
    "ap-southeast-5": "841784149062", "ap-southeast-7": "471112967968", "ca-central-1": "446299261295",
    "ca-west-1": "000907499111", "cn-north-1": "671472414489", "cn-northwest-1": "844356804704",
    "eu-central-1": "906073651304", "eu-central-2": "142351485170", "eu-north-1": "330188676905",
    "eu-south-1": "753923664805", "eu-south-2": "833944533722", "eu-west-1": "571004829621",
    "eu-west-2": "836651553127", "eu-west-3": "136845547031", "il-central-1": "408426139102",
    "me-central-1": "395420993607", "me-south-1": "750251592176", "mx-central-1": "211125459255",
    "sa-east-1": "737130764395", "us-east-1": "173754725891", "us-east-2": "314815235551",
    "us-gov-east-1": "260923028637", "us-gov-west-1": "271483468897", "us-west-1": "667973535471",
    "us-west-2": "153931337802",
}


def ecr_hostname(region: str) -> str:
    """ECR's hostname in ``region``: the China partition has its own domain."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"ecr.{region}.{domain}"


def spark_image_uri(region: str) -> str:
    """The pinned Spark processing image in ``region``; ValueError naming the published regions otherwise."""
    account = SPARK_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(f"the Spark processing image {SPARK_IMAGE_TAG} is not published in {region!r} (it is in "
                         f"{', '.join(sorted(SPARK_IMAGE_ACCOUNTS))})")
    return f"{account}.dkr.{ecr_hostname(region)}/{SPARK_IMAGE_REPOSITORY}:{SPARK_IMAGE_TAG}"
