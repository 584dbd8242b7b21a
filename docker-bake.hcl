# docker buildx bake: the three published images, each for linux/amd64 and linux/arm64, with an
# SBOM and max-mode provenance attached.
#
#   docker buildx bake                                   # all three (group "default")
#   docker buildx bake python13                          # one
#   VERSION=0.1.0 GIT_COMMIT=$(git rev-parse HEAD) BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#       docker buildx bake --push
#   docker buildx bake --print                           # what would be built
#
# Variables are read from the environment of the same name.

variable "REGISTRY" {
  default = "ghcr.io/vardr"
}

variable "VERSION" {
  default = "0.1.0"
}

variable "PLATFORMS" {
  default = "linux/amd64,linux/arm64"
}

variable "GIT_COMMIT" {
  default = "unknown"
}

variable "BUILD_DATE" {
  default = "unknown"
}

group "default" {
  targets = ["python12", "python13", "python13-distroless"]
}

target "image" {
  name = variant.name
  matrix = {
    variant = [
      { name = "python12", python = "3.12", distroless = "true" },
      { name = "python13", python = "3.13", distroless = "false" },
      { name = "python13-distroless", python = "3.13", distroless = "true" },
    ]
  }
  context    = "."
  dockerfile = "Dockerfile"
  target     = "final"
  platforms  = split(",", PLATFORMS)
  args = {
    PYTHON_VERSION = variant.python
    DISTROLESS     = variant.distroless
    VERSION        = VERSION
    GIT_COMMIT     = GIT_COMMIT
    BUILD_DATE     = BUILD_DATE
  }
  tags = [
    "${REGISTRY}/fastapi:${variant.name}",
    "${REGISTRY}/fastapi:${VERSION}-${variant.name}",
  ]
  attest = [
    "type=sbom",
    "type=provenance,mode=max",
  ]
}
