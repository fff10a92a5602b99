#include "dist/process_group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/error.h"

namespace disranker::dist {

struct Group::Backend {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

namespace {

std::shared_ptr<gloo::transport::Device> make_device(const std::string& master_addr) {
  // Which network interface Gloo binds: the one the user names (as with PyTorch), the loopback device when
  // the whole job is on this machine, else the address this machine's hostname resolves to.
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  if (master_addr == "127.0.0.1" || master_addr == "localhost") {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// What the exception being handled says. Gloo reports a closed peer with its own exception type, libtorch
// with c10::Error (whose what() carries a backtrace).
std::string current_reason() {
  try {
    throw;
  } catch (const c10::Error& error) {
    return error.what_without_backtrace();
  } catch (const std::exception& error) {
    return error.what();
  }
}

// A failed collective almost always means another rank died first: say so, with this rank's identity.
[[noreturn]] void rethrow(const Launch& launch, const char* what) {
  throw Error("distributed: rank " + std::to_string(launch.rank) + " of " +
              std::to_string(launch.world_size) + ": " + what +
              " failed (did another rank exit? see its log): " + current_reason());
}

}  // namespace

Group::Group() = default;

Group::Group(const Launch& launch, std::chrono::milliseconds timeout) : launch_(launch) {
  if (!launch.distributed()) return;
  backend_ = std::make_unique<Backend>();
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(launch.master_port);
    store_options.isServer = launch.is_root();
    store_options.numWorkers = static_cast<std::size_t>(launch.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    backend_->store = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(make_device(launch.master_addr));
    options->threads = 1;  // the collectives are small next to the model's work; keep the cores for it
    backend_->gloo =
        c10::make_intrusive<c10d::ProcessGroupGloo>(backend_->store, launch.rank, launch.world_size, options);
  } catch (const std::exception&) {
    throw Error("distributed: rank " + std::to_string(launch.rank) + " of " +
                std::to_string(launch.world_size) + " could not join the job at " + launch.master_addr + ":" +
                std::to_string(launch.master_port) +
                " (is MASTER_ADDR reachable, MASTER_PORT free on rank 0, and every rank started?): " +
                current_reason());
  }
}

Group::~Group() = default;

void Group::all_reduce_sum(torch::Tensor& tensor) {
  if (!distributed()) return;
  try {
    std::vector<torch::Tensor> tensors{tensor};
    backend_->gloo->allreduce(tensors)->wait();
  } catch (const std::exception&) {
    rethrow(launch_, "all-reduce");
  }
}

void Group::all_reduce_gradients(const std::vector<torch::Tensor>& parameters) {
  if (!distributed()) return;
  torch::NoGradGuard no_grad;
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (const auto& parameter : parameters) {
    auto& grad = const_cast<torch::Tensor&>(parameter).mutable_grad();
    if (!grad.defined()) grad = torch::zeros_like(parameter);
    by_dtype[grad.scalar_type()].push_back(grad);
  }
  for (auto& [dtype, grads] : by_dtype) {
    std::vector<torch::Tensor> flat;
    flat.reserve(grads.size());
    for (const auto& grad : grads) flat.push_back(grad.reshape(-1));
    // Gloo reduces host memory: gradients on a GPU travel through one host buffer.
    torch::Tensor buffer = torch::cat(flat).to(torch::kCPU);
    all_reduce_sum(buffer);
    std::int64_t offset = 0;
    for (auto& grad : grads) {
      grad.copy_(buffer.narrow(0, offset, grad.numel()).view_as(grad), /*non_blocking=*/false);
      offset += grad.numel();
    }
  }
}

void Group::broadcast_from_root(const std::vector<torch::Tensor>& tensors) {
  if (!distributed()) return;
  torch::NoGradGuard no_grad;
  try {
    for (const auto& tensor : tensors) {
      std::vector<torch::Tensor> one{tensor.is_contiguous() ? tensor : tensor.contiguous()};
      backend_->gloo->broadcast(one)->wait();
      if (!tensor.is_contiguous()) const_cast<torch::Tensor&>(tensor).copy_(one[0]);
    }
  } catch (const std::exception&) {
    rethrow(launch_, "broadcast");
  }
}

std::vector<std::string> Group::all_gather(const std::string& bytes) {
  if (!distributed()) return {bytes};
  try {
    // Gloo gathers tensors of one shape: first the lengths, then the bytes padded to the longest.
    std::vector<torch::Tensor> length{
        torch::tensor({static_cast<std::int64_t>(bytes.size())}, torch::kInt64)};
    std::vector<std::vector<torch::Tensor>> lengths(1);
    for (int r = 0; r < size(); ++r) lengths[0].push_back(torch::empty({1}, torch::kInt64));
    backend_->gloo->allgather(lengths, length)->wait();
    std::int64_t longest = 1;
    for (const auto& l : lengths[0]) longest = std::max(longest, l.item<std::int64_t>());
    torch::Tensor mine = torch::zeros({longest}, torch::kUInt8);
    std::copy(bytes.begin(), bytes.end(), mine.data_ptr<std::uint8_t>());
    std::vector<torch::Tensor> input{mine};
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty({longest}, torch::kUInt8));
    backend_->gloo->allgather(outputs, input)->wait();
    std::vector<std::string> gathered;
    for (int r = 0; r < size(); ++r) {
      const auto* data = reinterpret_cast<const char*>(outputs[0][r].data_ptr<std::uint8_t>());
      gathered.emplace_back(data, static_cast<std::size_t>(lengths[0][r].item<std::int64_t>()));
    }
    return gathered;
  } catch (const std::exception&) {
    rethrow(launch_, "all-gather");
  }
}

void Group::barrier() {
  if (!distributed()) return;
  try {
    backend_->gloo->barrier()->wait();
  } catch (const std::exception&) {
    rethrow(launch_, "barrier");
  }
}

Group& world() {
  // Never destroyed: Gloo's threads must not be torn down by static destructors while a peer still talks.
  static Group* group = [] {
    const Launch launch = launch_from_environment();
    if (!launch.distributed()) return new Group();
    double seconds = 600;
    if (const char* text = std::getenv("DISRANKER_DIST_TIMEOUT"); text != nullptr) {
      char* end = nullptr;
      seconds = std::strtod(text, &end);
      if (end == text || *end != '\0' || !(seconds > 0)) {
        throw Error("environment", 0, "DISRANKER_DIST_TIMEOUT",
                    "expected a positive number of seconds, got '" + std::string(text) + "'");
      }
    }
    std::fprintf(stderr, "distributed: rank %d of %d (local %d of %d, %s), rendezvous %s:%d\n", launch.rank,
                 launch.world_size, launch.local_rank, launch.local_world_size, launch.launcher.c_str(),
                 launch.master_addr.c_str(), launch.master_port);
    return new Group(launch, std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000)));
  }();
  return *group;
}

}  // namespace disranker::dist
